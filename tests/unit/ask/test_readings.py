"""Which reading of a question the offline interpreter takes, over a small layer built here
(a pizzeria, so nothing leans on the demo's words): the names covering the most of the
question win, a dimension two products hold equally near is asked back."""

from __future__ import annotations

import pytest

from dagster_project.ask.parser import OfflineParser
from dagster_project.ask.semantic_sql import SemanticQueryError, compile_query
from dagster_project.core.contracts import Contract
from dagster_project.metadata.semantics import SemanticLayer, parse_semantics
from tests.factories import column, contract_document

KEY = {"primaryKey": True, "required": True}


def _contract(product: str, *columns: dict) -> Contract:
    return Contract(contract_document(list(columns), domain="pizzeria", product=product), "-")


def _key(name: str, logical_type: str = "string", position: int = 1) -> dict:
    return column(name, logical_type, primaryKeyPosition=position, **KEY)


CONTRACTS = [
    _contract("pizzas", _key("pizza_id"), column("pizza_name")),
    _contract("kitchens", _key("kitchen_id"), column("town"), column("grade"), column("chef")),
    _contract("couriers", _key("courier_id"), column("grade")),
    _contract(
        "order_lines",
        _key("order_id"),
        _key("line", "integer", 2),
        column("order_date", "date"),
        column("pizza_id"),
        column("kitchen_id"),
        column("courier_id"),
        column("channel"),
        column("quantity", "integer"),
        column("delay_min", "number"),
        column("refunded", "integer"),
        column("chef"),
    ),
    _contract(
        "inventory",
        _key("day", "date"),
        _key("kitchen_id", position=2),
        _key("pizza_id", position=3),
        column("on_hand", "integer"),
    ),
    _contract(
        "reviews",
        _key("review_id"),
        column("post_date", "date"),
        column("pizza_id"),
        column("negative", "integer"),
    ),
]
SEMANTICS = {
    "domain": "pizzeria",
    "entities": [
        {"name": "pizza", "key": "pizza_id", "product": "pizzas"},
        {"name": "kitchen", "key": "kitchen_id", "product": "kitchens"},
        {"name": "courier", "key": "courier_id", "product": "couriers"},
        {"name": "order", "key": "order_id"},
    ],
    "models": [
        {"product": "pizzas", "dimensions": ["pizza_name"]},
        {"product": "kitchens", "dimensions": ["town", "grade"]},  # grade: a kitchen's
        {"product": "couriers", "dimensions": ["grade"]},  # and a courier's, as near
        {"product": "order_lines", "time_dimension": "order_date",
         "dimensions": ["channel", {"column": "chef", "synonyms": ["cook"]}]},
        {"product": "inventory", "time_dimension": "day"},
        {"product": "reviews", "time_dimension": "post_date"},
    ],
    "metrics": [
        {"name": "pizzas_sold", "model": "order_lines", "column": "quantity",
         "synonyms": ["pizzas sold"]},
        {"name": "orders", "model": "order_lines", "agg": "count_distinct", "column": "order_id"},
        {"name": "delivery_delay", "model": "order_lines", "agg": "avg", "column": "delay_min"},
        {"name": "refund_count", "model": "order_lines", "column": "refunded",
         "better": "lower"},
        {"name": "menu_size", "model": "pizzas", "agg": "count"},
        {"name": "kitchen_count", "model": "kitchens", "agg": "count",
         "synonyms": ["number of cooks"]},
        {"name": "on_hand", "model": "inventory", "column": "on_hand"},
        {"name": "reviews", "model": "reviews", "agg": "count"},
        {"name": "negative_reviews", "model": "reviews", "column": "negative"},
    ],
}  # fmt: skip
VALUES = {"channel": ["kitchen", "online"], "town": ["Leeds", "York"]}


@pytest.fixture(scope="module")
def layer() -> SemanticLayer:
    return parse_semantics([("pizzeria", SEMANTICS)], CONTRACTS).validate()


@pytest.fixture(scope="module")
def parser(layer: SemanticLayer) -> OfflineParser:
    return OfflineParser(layer, VALUES)


def test_the_metric_whose_name_covers_more_of_the_question_wins(parser: OfflineParser):
    sold = parser.parse("how many pizzas were sold")  # "pizzas ... sold": the metric's name
    assert sold.status == "answered", sold.reason
    assert sold.query == {"metrics": ["pizzas_sold"]}
    menu = parser.parse("how many pizzas")  # only the entity's word: it is counted
    assert menu.query == {"metrics": ["menu_size"]}


def test_a_dimension_two_models_hold_as_near_as_each_other_is_asked_back(
    parser: OfflineParser,
):
    parsed = parser.parse("pizzas sold by grade")  # a kitchen's grade or a courier's?
    assert parsed.status == "clarify" and parsed.query is None
    assert parsed.choices == [
        "pizzas_sold, by kitchens.grade",
        "pizzas_sold, by couriers.grade",
    ]
    named = parser.parse("pizzas sold by kitchen grade")  # naming the entity decides
    assert named.status == "answered", named.reason
    assert named.query == {"metrics": ["pizzas_sold"], "dimensions": ["kitchens.grade"]}


def test_values_of_one_dimension_set_side_by_side_are_all_kept(parser: OfflineParser):
    # "kitchen" is an entity's name too: read alone it would be the kitchen, and dropped
    both = {"dimension": "channel", "op": "in", "value": ["kitchen", "online"]}
    versus = parser.parse("online versus kitchen: pizzas sold per order")
    assert versus.status == "answered", versus.reason
    assert versus.query == {
        "metrics": ["pizzas_sold/orders"],
        "dimensions": ["channel"],  # compared: each side on its own row
        "filters": [both],
    }
    either = parser.parse("pizzas sold, kitchen or online")
    assert either.query == {"metrics": ["pizzas_sold"], "filters": [both]}
    unjoined = parser.parse("online, kitchen: pizzas sold")  # the kitchen, or a channel?
    assert unjoined.status == "clarify" and unjoined.query is None
    assert unjoined.choices == [
        "pizzas_sold, channel = online",
        "pizzas_sold, channel in kitchen, online",
    ]


def test_a_distinct_count_under_a_verb_comes_from_the_verbs_model(parser: OfflineParser):
    # "sold" names pizzas_sold's model: the pizzas counted are the sold ones, not the
    # inventory's (which reaches the town as well, and was taken)
    parsed = parser.parse("how many distinct pizzas were sold in Leeds")
    assert parsed.status == "answered", parsed.reason
    assert parsed.query == {
        "metrics": ["distinct_pizza_id_in_order_lines"],
        "filters": [{"dimension": "town", "op": "=", "value": "Leeds"}],
    }


def test_how_many_different_values_is_never_answered_as_a_metric_by_them(
    parser: OfflineParser,
):
    # the question counts towns; pizzas sold by town would be another answer
    parsed = parser.parse("how many different towns were pizzas sold in")
    assert parsed.status == "unanswerable" and parsed.query is None
    assert parser.parse("how many different towns").query == {"metrics": ["distinct_town"]}
    grouped = parser.parse("pizzas sold across different towns")  # grouping, as asked
    assert grouped.query == {"metrics": ["pizzas_sold"], "dimensions": ["town"]}


def test_a_word_a_metric_is_named_with_only_in_a_longer_phrase_is_the_thing(
    parser: OfflineParser,
):
    # "number of cooks" names a count; "cooks" alone, ranked, is the cook
    ranked = parser.parse("top 2 cooks by pizzas sold")
    assert ranked.status == "answered", ranked.reason
    assert ranked.query == {
        "metrics": ["pizzas_sold"],
        "dimensions": ["chef"],
        "order_by": ["-pizzas_sold"],
        "limit": 2,
    }
    # "how many cooks" is "the number of cooks": the count written so
    assert parser.parse("how many cooks").query == {"metrics": ["kitchen_count"]}


def test_the_verb_a_time_dimension_is_named_after_dates_the_event(parser: OfflineParser):
    # `post_date`: "posted" is the event the question dates, not a word left unexplained
    posted = parser.parse("how many reviews were posted in 2025")
    assert posted.status == "answered", posted.reason
    assert posted.query == {"metrics": ["reviews"], "start": "2025-01-01", "end": "2025-12-31"}
    # `order_date`: only a past form is the verb; "order" stays the entity
    assert parser.parse("orders ordered in 2025").query == {
        "metrics": ["orders"],
        "start": "2025-01-01",
        "end": "2025-12-31",
    }


# -- a comparison on a value per row: "flights with a departure delay over 60" ----------------
AIRPORT = [
    Contract(contract_document(list(cols), domain="airport", product=name), "-")
    for name, *cols in [
        ("aircraft", _key("tail_number"), column("seats", "integer")),
        (
            "flights",
            _key("flight_id"),
            column("flight_date", "date"),
            column("carrier"),
            column("tail_number"),
            column("dep_delay", "number"),
        ),
    ]
]
AIRPORT_SEMANTICS = {
    "domain": "airport",
    "entities": [{"name": "aircraft", "key": "tail_number", "product": "aircraft"}],
    "models": [
        {"product": "aircraft"},
        {"product": "flights", "time_dimension": "flight_date", "dimensions": ["carrier"]},
    ],
    "metrics": [
        {"name": "flights", "model": "flights", "agg": "count"},
        {"name": "departure_delay", "model": "flights", "agg": "avg", "column": "dep_delay"},
        {"name": "seats", "model": "aircraft", "agg": "max", "column": "seats"},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def airport() -> OfflineParser:
    layer = parse_semantics([("airport", AIRPORT_SEMANTICS)], AIRPORT).validate()
    return OfflineParser(layer, {"carrier": ["AA", "UA"]})


@pytest.mark.parametrize(
    ("question", "count", "compared"),
    [
        (  # the rows counted are the flights the delay is a column of
            "how many flights had a departure delay over 60 minutes",
            "flights",
            {"dimension": "dep_delay", "metric": "departure_delay", "op": ">", "value": 60},
        ),
        (  # an entity whose product is the model: one row each
            "how many aircraft had more than 200 seats",
            "distinct_tail_number_in_aircraft",
            {"dimension": "seats", "metric": "seats", "op": ">", "value": 200},
        ),
    ],
)
def test_a_comparison_on_the_rows_counted_compares_each_row(
    airport: OfflineParser, question: str, count: str, compared: dict
):
    parsed = airport.parse(question)
    assert parsed.status == "answered", parsed.reason
    assert parsed.query == {"metrics": [count], "filters": [compared]}
    assert not parsed.count  # the count is the metric itself, not of rows of a result
    sql = compile_query(airport.layer, parsed.query).sql
    assert f"WHERE airport__{airport.layer.metrics[count].product.split('/')[1]}." in sql
    assert "HAVING" not in sql and "\nWHERE" not in sql.partition(")\nSELECT")[2]


def test_a_comparison_on_another_models_rows_is_still_refused(airport: OfflineParser):
    # the delay is a flight's; an aircraft's would be the average over its flights
    parsed = airport.parse("how many aircraft had a departure delay over 60")
    assert parsed.status == "unanswerable" and parsed.query is None
    grouped = airport.parse("carriers with a departure delay over 60")  # per carrier: HAVING
    assert grouped.status == "answered", grouped.reason
    assert grouped.query["having"] == [{"dimension": "departure_delay", "op": ">", "value": 60}]
    assert not grouped.query.get("filters")


@pytest.mark.parametrize(
    ("wrong", "says"),
    [
        ({"dimension": "carrier", "metric": "departure_delay"}, "aggregates 'dep_delay'"),
        ({"dimension": "seats", "metric": "seats"}, "not of airport/flights"),
        ({"dimension": "dep_delay", "metric": "flights"}, "no column of its own"),
    ],
)
def test_a_filter_on_a_metrics_column_is_checked_against_the_layer(
    airport: OfflineParser, wrong: dict, says: str
):
    query = {"metrics": ["flights"], "filters": [{**wrong, "op": ">", "value": 1}]}
    with pytest.raises(SemanticQueryError, match=says):
        compile_query(airport.layer, query)


def test_how_many_of_what_another_metric_counts_is_that_metric(parser: OfflineParser):
    # "reviews" alone is the reviews' row count; "negative reviews" names the other metric
    parsed = parser.parse("how many reviews were negative")
    assert parsed.status == "answered", parsed.reason
    assert parsed.query == {"metrics": ["negative_reviews"]}
    assert parser.parse("how many reviews").query == {"metrics": ["reviews"]}
    both = parser.parse("reviews and negative reviews")  # no "how many": both are asked
    assert both.query == {"metrics": ["reviews", "negative_reviews"]}


@pytest.mark.parametrize(
    ("question", "order"),
    [
        ("which channel has the best pizzas sold", "-pizzas_sold"),  # more is better
        ("which channel has the worst pizzas sold", "pizzas_sold"),
        ("which channel has the worst delivery delay", "-delivery_delay"),  # a bad quantity
        ("which channel has the best delivery delay", "delivery_delay"),
        ("which channel has the worst refund count", "-refund_count"),  # the layer says
        ("which channel has the lowest delivery delay", "delivery_delay"),  # not a judgement
    ],
)
def test_best_and_worst_rank_by_which_way_the_metric_is_better(
    parser: OfflineParser, question: str, order: str
):
    parsed = parser.parse(question)
    assert parsed.status == "answered", parsed.reason
    assert parsed.query["order_by"] == [order] and parsed.query["limit"] == 1


def test_the_verb_of_the_events_a_products_rows_are_is_that_event():
    # "deliveries": what was delivered; the verb is the event, not a word nobody knows
    contracts = [
        *CONTRACTS,
        _contract("deliveries", _key("delivery_id"), column("kitchen_id"), column("km", "number")),
    ]
    semantics = {
        **SEMANTICS,
        "models": [*SEMANTICS["models"], {"product": "deliveries"}],
        "metrics": [
            *SEMANTICS["metrics"],
            {
                "name": "delivery_count",
                "model": "deliveries",
                "agg": "count",
                "synonyms": ["deliveries"],
            },
        ],
    }
    parser = OfflineParser(parse_semantics([("pizzeria", semantics)], contracts).validate(), VALUES)
    parsed = parser.parse("how many deliveries were delivered in Leeds")
    assert parsed.status == "answered", parsed.reason
    assert parsed.query == {
        "metrics": ["delivery_count"],
        "filters": [{"dimension": "town", "op": "=", "value": "Leeds"}],
    }
