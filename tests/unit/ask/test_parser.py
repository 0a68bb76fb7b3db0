"""The offline interpreter over the demo layer, with the values and latest days given
(no lake): each kind of question, and the questions it must not answer."""

from datetime import date

import pytest

from dagster_project.ask.parser import OfflineParser
from dagster_project.ask.semantic_sql import compile_query
from dagster_project.metadata.semantics import load_semantic_layer

VALUES = {
    "region": ["Central", "East", "North", "South", "West"],
    "city": ["Derby", "Manchester", "Swansea"],
    "customer_city": ["Derby", "Leeds", "Manchester"],
    "store_name": ["Derby Station", "Swansea Outlet"],
    "channel": ["online", "store"],
    "category": ["Books", "Electronics"],
    "loyalty_tier": ["bronze", "gold"],
    "payment_type": ["card", "cash", "gift_card"],
}
ANCHORS = {"sales/order_lines": date(2025, 3, 1), "inventory/stock_levels": date(2025, 3, 1)}


@pytest.fixture(scope="module")
def parser():
    return OfflineParser(load_semantic_layer(), VALUES, ANCHORS)


@pytest.mark.parametrize(
    ("question", "query"),
    [
        (
            "Which stores made more than 30000 in revenue?",
            {
                "metrics": ["revenue"],
                "dimensions": ["store_name"],
                "having": [{"dimension": "revenue", "op": ">", "value": 30000}],
            },
        ),
        (
            "Revenue from products with a list price above 50",
            {
                "metrics": ["revenue"],
                "filters": [{"dimension": "list_price", "op": ">", "value": 50}],
            },
        ),
        (
            "Revenue from order lines with a discount of at least 20%",
            {
                "metrics": ["revenue"],
                "filters": [{"dimension": "discount", "op": ">=", "value": 0.2}],
            },
        ),
        (
            "Which region has the most revenue?",
            {
                "metrics": ["revenue"],
                "dimensions": ["region"],
                "order_by": ["-revenue"],
                "limit": 1,
            },
        ),
        (
            "The day with the lowest units sold",
            {
                "metrics": ["units_sold"],
                "time_grain": "day",
                "order_by": ["units_sold"],
                "limit": 1,
            },
        ),
        (
            "Which payment method is used for the most orders?",
            {
                "metrics": ["orders"],
                "dimensions": ["payment_type"],
                "order_by": ["-orders"],
                "limit": 1,
            },
        ),
        (
            "Revenue by region last week",
            {
                "metrics": ["revenue"],
                "dimensions": ["region"],
                "start": "2025-02-17",
                "end": "2025-02-23",
            },
        ),
        (
            "Orders in the last 7 days",
            {"metrics": ["orders"], "start": "2025-02-23", "end": "2025-03-01"},
        ),
        (
            "Revenue in January",
            {"metrics": ["revenue"], "start": "2025-01-01", "end": "2025-01-31"},
        ),
        (
            "Revenue on the most recent day",
            {"metrics": ["revenue"], "start": "2025-03-01", "end": "2025-03-01"},
        ),
        (
            "Top 3 products by revenue in Electronics",
            {
                "metrics": ["revenue"],
                "dimensions": ["product_name"],
                "filters": [{"dimension": "category", "op": "=", "value": "Electronics"}],
                "order_by": ["-revenue"],
                "limit": 3,
            },
        ),
        (
            "Revenue by region and channel",
            {"metrics": ["revenue"], "dimensions": ["region", "channel"]},
        ),
        ("Orders by customer segment", {"metrics": ["orders"], "dimensions": ["rfm_segment"]}),
        (
            "Units per order by channel",
            {"metrics": ["units_sold/orders"], "dimensions": ["channel"]},
        ),
        (
            "Average revenue per customer",
            {"metrics": ["revenue/distinct_customer_id_in_order_lines"]},
        ),
        ("Revenue per store", {"metrics": ["revenue"], "dimensions": ["store_name"]}),
        (
            "How many orders had a discount?",
            {"metrics": ["orders"], "filters": [{"dimension": "discount", "op": ">", "value": 0}]},
        ),
        (
            "How many customers bought online?",
            {
                "metrics": ["distinct_customer_id_in_order_lines"],
                "filters": [{"dimension": "channel", "op": "=", "value": "online"}],
            },
        ),
        ("How many brands are there?", {"metrics": ["distinct_brand"]}),
        (
            "Revenue outside the store channel by region",
            {
                "metrics": ["revenue"],
                "dimensions": ["region"],
                "filters": [{"dimension": "channel", "op": "!=", "value": "store"}],
            },
        ),
        (
            "Revenue at stores in Manchester",
            {
                "metrics": ["revenue"],
                "filters": [{"dimension": "city", "op": "=", "value": "Manchester"}],
            },
        ),
        (
            "How many customers are in Leeds?",
            {
                "metrics": ["customer_count"],
                "filters": [{"dimension": "customer_city", "op": "=", "value": "Leeds"}],
            },
        ),
        (
            "Bottom 2 regions by revenue",  # "bottom" is also a word of the layer
            {
                "metrics": ["revenue"],
                "dimensions": ["region"],
                "order_by": ["revenue"],
                "limit": 2,
            },
        ),
        (
            "Which 3 days had the most orders?",  # "3 days" is not a duration here
            {"metrics": ["orders"], "time_grain": "day", "order_by": ["-orders"], "limit": 3},
        ),
        (
            "Top 3 cities by number of orders",
            {"metrics": ["orders"], "dimensions": ["city"], "order_by": ["-orders"], "limit": 3},
        ),
        (
            "Which product has the highest unit cost?",  # an attribute, not a metric
            {
                "metrics": ["product_count"],
                "dimensions": ["product_name", "unit_cost"],
                "order_by": ["-unit_cost"],
                "limit": 1,
            },
        ),
        (
            "How many distinct customers bought online?",
            {
                "metrics": ["distinct_customer_id_in_order_lines"],
                "filters": [{"dimension": "channel", "op": "=", "value": "online"}],
            },
        ),
        (
            "Revenue yesterday",  # the day before the latest day of data
            {"metrics": ["revenue"], "start": "2025-02-28", "end": "2025-02-28"},
        ),
    ],
)
def test_questions_become_semantic_queries(parser, question, query):
    parsed = parser.parse(question)
    assert parsed.status == "answered", parsed.reason
    assert parsed.query == query
    compile_query(parser.layer, parsed.query)  # and they compile


@pytest.mark.parametrize(
    ("question", "unmatched"),
    [
        ("revenue by shoe size", ["shoe"]),
        ("revenue by favourite colour", ["favourite", "colour"]),
        ("Which employees were hired last year?", ["employee", "hired"]),
        ("Revenue in Tokyo", ["tokyo"]),
    ],
)
def test_a_word_nothing_explains_makes_the_question_unanswerable(parser, question, unmatched):
    parsed = parser.parse(question)
    assert parsed.status == "unanswerable" and parsed.query is None
    assert [w.rstrip("s") for w in parsed.unmatched] == [w.rstrip("s") for w in unmatched]
    assert all(w.rstrip("s") in parsed.reason for w in unmatched)


@pytest.mark.parametrize(
    "question", ["Which city has the largest store?", "Which supplier has the longest lead time?"]
)
def test_a_superlative_with_nothing_measured_is_not_answered(parser, question):
    parsed = parser.parse(question)  # no count stands in for what is not named
    assert parsed.status == "unanswerable" and parsed.query is None
    assert "nothing to rank by" in parsed.reason


def test_an_attribute_ranking_lists_the_entity_with_it(parser):
    parsed = parser.parse("Which product has the highest unit cost?")
    assert parsed.listing


def test_a_value_in_two_columns_asks_back_with_the_choices(parser):
    parsed = parser.parse("Revenue in Manchester")
    assert parsed.status == "clarify" and parsed.query is None
    assert {c.split(", ")[1] for c in parsed.choices} == {
        "city = Manchester",
        "customer_city = Manchester",
    }


def test_interpretation_in_words(parser):
    parsed = parser.parse("Top 3 stores by revenue in the North region last week")
    assert parsed.interpretation == (
        "revenue, by store_name, region = North, 2025-02-17..2025-02-23, top 3 by revenue"
    )


def test_a_new_domain_needs_only_its_semantic_layer(parser):
    """No word of the demo domains in the interpreter: every phrase it maps comes from
    the layer or the data, so a layer without `revenue` does not know the word."""
    layer = load_semantic_layer()
    without = type(layer)(
        entities=layer.entities,
        models=layer.models,
        metrics={k: v for k, v in layer.metrics.items() if k != "revenue"},
        contracts=layer.contracts,
    )
    other = OfflineParser(without, VALUES, ANCHORS)
    assert other.parse("revenue by region").status == "unanswerable"
    assert other.parse("units sold by region").status == "answered"


def test_a_text_longer_than_a_question_is_refused_before_it_is_parsed(parser):
    parsed = parser.parse("revenue by region " * 60)  # 180 words
    assert parsed.status == "unanswerable" and "180 words" in parsed.reason


@pytest.mark.parametrize("word", ["avg", "mean", "average"])
def test_avg_and_mean_name_a_metric_called_average(parser, word):
    parsed = parser.parse(f"{word} lifetime value by segment")
    assert parsed.status == "answered", parsed.reason
    assert parsed.query["metrics"] == ["average_lifetime_value"]


@pytest.fixture(scope="module")
def seasons():
    """The layer with dragracer's seasons coded S01..S12 (a code and a number)."""
    values = {**VALUES, "season": [f"S{n:02d}" for n in range(1, 13)]}
    return OfflineParser(load_semantic_layer(), values, ANCHORS)


@pytest.mark.parametrize(
    ("question", "value"),
    [("average age of the season 1 queens", "S01"), ("episodes in season 12", "S12")],
)
def test_a_number_after_a_dimension_is_its_value_coded_with_that_number(seasons, question, value):
    parsed = seasons.parse(question)
    assert parsed.status == "answered", parsed.reason
    assert {"dimension": "season", "op": "=", "value": value} in parsed.query["filters"]


def test_a_number_no_value_is_coded_with_is_not_read_as_one(seasons):
    assert seasons.parse("episodes in season 13").status == "unanswerable"


def test_a_row_count_word_the_metric_cannot_group_by_is_whom_it_is_about(seasons):
    # "queens" is also a dimension (contestant) of other models; age's model counts queens
    parsed = seasons.parse("average age of the queens")
    assert parsed.status == "answered", parsed.reason
    assert parsed.query == {"metrics": ["average_age"]}


def test_a_contracts_other_name_for_its_product_is_understood(parser):
    # inventory/products' ODCS synonyms include "catalogue", a word nothing else explains
    parsed = parser.parse("how many products are in the catalogue")
    assert parsed.status == "answered", parsed.reason
    assert parsed.query == {"metrics": ["product_count"]}


def test_a_product_synonym_of_known_words_does_not_swallow_their_reading(parser):
    # sales/daily_sales is also called "daily revenue": still the grain and the metric
    parsed = parser.parse("daily revenue for the last 3 days")
    assert parsed.status == "answered", parsed.reason
    assert parsed.query["metrics"] == ["revenue"] and parsed.query["time_grain"] == "day"


def test_a_phrasal_verb_a_time_dimension_is_named_after_dates_its_event(parser):
    # customers' time dimension is signup_date: "signed up" is that event, dated
    parsed = parser.parse("how many customers signed up in 2024?")
    assert parsed.status == "answered", parsed.reason
    assert parsed.query == {
        "metrics": ["customer_count"],
        "start": "2024-01-01",
        "end": "2024-12-31",
    }


def test_a_verb_of_having_is_a_light_verb(parser):
    parsed = parser.parse("how many brands do we carry?")
    assert parsed.status == "answered", parsed.reason
    assert parsed.query == {"metrics": ["distinct_brand"]}
