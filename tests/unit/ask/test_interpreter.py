"""General mechanisms of the offline interpreter, as a user would phrase questions (written
before the code): counts of entities under a filter, numbers as people write them,
superlatives over an entity's attribute, typos, and metrics the layer cannot build."""

import pytest

from dagster_project.ask.parser import OfflineParser
from dagster_project.ask.semantic_sql import compile_query
from dagster_project.metadata.semantics import load_semantic_layer
from tests.unit.ask.test_parser import ANCHORS, VALUES


@pytest.fixture(scope="module")
def parser():
    return OfflineParser(load_semantic_layer(), VALUES, ANCHORS)


def answered(parser: OfflineParser, question: str):
    parsed = parser.parse(question)
    assert parsed.status == "answered", parsed.reason
    compile_query(parser.layer, parsed.query)
    return parsed


# -- how many X <filter>: the number of distinct entities that pass it ----------------------
@pytest.mark.parametrize(
    ("question", "having"),
    [
        (
            "how many stores have revenue above 20000",
            {"dimension": "revenue", "op": ">", "value": 20000},
        ),
        (
            "How many regions had fewer than 500 orders?",
            {"dimension": "orders", "op": "<", "value": 500},
        ),
        (
            "how many products are out of stock",
            {"dimension": "stock_on_hand", "op": "=", "value": 0},
        ),
        (
            "Number of stores with revenue above 20000",
            {"dimension": "revenue", "op": ">", "value": 20000},
        ),
    ],
)
def test_how_many_entities_pass_a_metric_filter_is_a_count_of_them(parser, question, having):
    parsed = answered(parser, question)
    assert parsed.count, parsed.query  # one number, not a list of the entities
    assert parsed.query["having"] == [having]
    assert len(parsed.query["dimensions"]) == 1


def test_how_many_entities_without_a_dimension_to_count_by_is_not_answered(parser):
    parsed = parser.parse("how many customers have more than 3 orders")  # no customer dimension
    assert parsed.status == "unanswerable" and parsed.query is None
    assert "count them by" in parsed.reason


def test_the_number_of_orders_by_a_dimension_is_still_a_metric(parser):
    parsed = answered(parser, "top 3 cities by number of orders")
    assert not parsed.count and parsed.query["metrics"] == ["orders"]


def test_how_many_with_an_attribute_filter_counts_with_the_entity_metric(parser):
    parsed = answered(parser, "how many products have a list price above 50?")
    assert not parsed.count
    assert parsed.query == {
        "metrics": ["product_count"],
        "filters": [{"dimension": "list_price", "op": ">", "value": 50}],
    }


def test_which_entities_pass_a_metric_filter_is_still_a_list(parser):
    parsed = answered(parser, "which stores have revenue above 20000")
    assert not parsed.count and parsed.query["dimensions"] == ["store_name"]


# -- numbers as people write them ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("question", "value"),
    [
        ("stores with revenue over 20k", 20000),
        ("stores with revenue over 1.5m", 1500000),
        ("stores with revenue over 2,000", 2000),
        ("stores with revenue over 2.5K", 2500),
        ("stores with revenue over ten", 10),
        ("stores with revenue over two thousand", 2000),
        ("stores with revenue over fifty five", 55),
        ("stores with revenue over three hundred", 300),
    ],
)
def test_numbers_in_filters(parser, question, value):
    parsed = answered(parser, question)
    assert parsed.query["having"] == [{"dimension": "revenue", "op": ">", "value": value}]


def test_a_spelled_limit(parser):
    parsed = answered(parser, "top twelve products by revenue")
    assert parsed.query["limit"] == 12


# -- superlatives over an attribute of an entity ------------------------------------------------
@pytest.mark.parametrize(
    ("question", "order", "limit"),
    [
        ("the 10 most expensive items", "-list_price", 10),
        ("what is the cheapest product", "list_price", 1),
        ("the 3 least expensive products", "list_price", 3),
        ("top 3 products by unit cost", "-unit_cost", 3),
        ("top 4 items by list price", "-list_price", 4),
    ],
)
def test_superlatives_over_an_attribute_list_the_entity(parser, question, order, limit):
    parsed = answered(parser, question)
    assert parsed.listing
    assert parsed.query["dimensions"][0] == "product_name"
    assert parsed.query["order_by"] == [order]
    assert parsed.query["limit"] == limit


def test_a_comparative_adjective_is_a_filter_on_its_attribute(parser):
    parsed = answered(parser, "revenue from products more expensive than 40")
    assert parsed.query["filters"] == [{"dimension": "list_price", "op": ">", "value": 40}]


@pytest.mark.parametrize(
    ("question", "word"),
    [
        ("the heaviest product", ["heaviest"]),  # nothing in the layer weighs
        # not a typo of "order": an age, which only the contestants have, not the stores
        ("how many stores are older than 10", []),
    ],
)
def test_an_adjective_whose_attribute_the_layer_lacks_is_not_answered(parser, question, word):
    parsed = parser.parse(question)
    assert parsed.status == "unanswerable" and parsed.query is None
    assert parsed.unmatched == word and "order" not in parsed.reason


# -- typos: corrected when there is one candidate, asked back when there are several -----------
@pytest.mark.parametrize(
    ("question", "query"),
    [
        ("revnue by regoin", {"metrics": ["revenue"], "dimensions": ["region"]}),
        ("revenue by chanel", {"metrics": ["revenue"], "dimensions": ["channel"]}),
        ("revenue by catgeory", {"metrics": ["revenue"], "dimensions": ["category"]}),
    ],
)
def test_a_typo_with_one_close_word_is_read_as_it(parser, question, query):
    parsed = answered(parser, question)
    assert parsed.query == query
    assert "read as" in parsed.interpretation  # the correction is said, not hidden


def test_a_typo_close_to_several_words_asks_back():
    values = {**VALUES, "city": [*VALUES["city"], "Bolton", "Boston"]}
    parsed = OfflineParser(load_semantic_layer(), values, ANCHORS).parse("revenue in Bolston")
    assert parsed.status == "clarify" and parsed.query is None
    assert parsed.choices == ["'bolston' as 'bolton'", "'bolston' as 'boston'"]


@pytest.mark.parametrize(
    ("question", "word"),
    [
        ("revenue during pride month", "pride"),  # a real word, not a typo of "price"
        ("revenue by tsore", "tsore"),  # the first letter is kept in what is guessed
    ],
)
def test_a_replaced_letter_or_first_letter_is_not_guessed(parser, question, word):
    parsed = parser.parse(question)
    assert parsed.status == "unanswerable" and word in parsed.unmatched


def test_close_words_of_one_meaning_are_one_candidate(parser):
    parsed = answered(parser, "revenue by monthy")  # month or monthly: the same grain
    assert parsed.query == {"metrics": ["revenue"], "time_grain": "month"}


@pytest.mark.parametrize(
    "question",
    [
        "revenue by aera",  # four letters: too short to guess
        "revenue by favourite colour",  # nothing close
        "revenue by rgnoi",  # too far from region
    ],
)
def test_short_or_distant_words_are_not_guessed(parser, question):
    parsed = parser.parse(question)
    assert parsed.status == "unanswerable" and parsed.query is None


# -- derived metrics: only from parts the layer defines --------------------------------------
@pytest.mark.parametrize(
    "question", ["gross margin by category", "profit by region", "return rate by store"]
)
def test_a_metric_the_layer_cannot_build_is_unanswerable(parser, question):
    parsed = parser.parse(question)
    assert parsed.status == "unanswerable" and parsed.query is None
    assert parsed.reason


def test_a_ratio_of_two_defined_metrics_is_answered(parser):
    parsed = answered(parser, "revenue per unit sold by channel")
    assert parsed.query["metrics"] == ["revenue/units_sold"]


def test_a_dimension_of_the_product_asked_about_beats_an_entity_named_alike_elsewhere():
    # Another domain's entity (supplier) has "vendor" as a synonym; contestants has a
    # dimension named vendor: a count of contestants by vendor can only mean the latter.
    import copy

    import yaml

    from dagster_project.metadata.semantics import parse_semantics, semantics_files

    layer = load_semantic_layer()
    docs = [(str(p), yaml.safe_load(p.read_text())) for p in semantics_files()]
    docs = copy.deepcopy(docs)
    for _, doc in docs:
        for model in doc.get("models") or []:
            if model["product"] == "contestants":
                model["dimensions"].append({"column": "hometown", "name": "vendor"})
    renamed = parse_semantics(docs, layer.contracts.values()).validate()
    parser = OfflineParser(renamed, VALUES, ANCHORS)
    parsed = answered(parser, "how many contestants by vendor")
    assert parsed.query["dimensions"] == ["vendor"], parsed.query
    # and a dimension that is the entity's own key stays the entity (grouped by its label)
    assert answered(parser, "revenue by store").query["dimensions"] == ["store_name"]


def test_a_word_that_is_part_of_several_metrics_names_asks_which(parser):
    # "won" alone names nothing; it is in the synonyms of two metrics.
    parsed = parser.parse("won by season")
    assert parsed.status == "clarify" and parsed.query is None
    assert parsed.choices == ["'won' as challenge_wins", "'won' as mini_challenge_wins"]
    # a word in no metric's name is still a word the layer does not know
    assert parser.parse("shoe by season").status == "unanswerable"


def test_a_name_written_with_its_first_word_is_read_as_the_one_value_it_begins():
    values = {**VALUES, "store_name": ["Harbour Point Retail Ltd.", "Hillside Mall", "Old Town"]}
    parser = OfflineParser(load_semantic_layer(), values, ANCHORS)
    parsed = answered(parser, "revenue of Harbour last month")
    assert parsed.query["filters"] == [
        {"dimension": "store_name", "op": "=", "value": "Harbour Point Retail Ltd."}
    ]
    assert "'harbour' read as 'Harbour Point Retail Ltd.'" in parsed.interpretation
    # lower case may be a plain word: asked back, never assumed
    asked = parser.parse("revenue of harbour last month")
    assert asked.status == "clarify"
    assert asked.choices == ["'harbour' as 'Harbour Point Retail Ltd.' (store_name)"]
    # a word that begins no value stays unknown
    assert parser.parse("revenue of Nowhere").status == "unanswerable"


def test_units_of_time_and_distance_after_a_number_and_light_verbs_say_nothing(parser):
    # "... went to ...", "over 60 minutes": English, in no layer; the number keeps its target
    from dagster_project.ask.parser import _is_unit

    parsed = answered(parser, "which stores went above 20000 revenue")
    assert parsed.query["having"] == [{"dimension": "revenue", "op": ">", "value": 20000}]
    assert all(map(_is_unit, ("minutes", "hours", "miles", "km", "kg")))


@pytest.mark.parametrize(
    ("question", "metrics"),
    [
        ("average age of the contestants", ["average_age"]),  # whom it is about, not a count
        ("contestants and average age by season", ["contestant_count", "average_age"]),
        ("average revenue of the stores", ["revenue/distinct_store_id_in_order_lines"]),
    ],
)
def test_a_count_named_after_a_metric_is_its_population_and_averages_are_per_it(
    parser, question, metrics
):
    assert answered(parser, question).query["metrics"] == metrics


def test_an_average_of_a_total_over_nothing_named_is_not_the_total(parser):
    # "average revenue by region" was revenue by region: "average" silently dropped.
    parsed = parser.parse("average revenue by region")
    assert parsed.status == "unanswerable" and "revenue is a total" in parsed.reason


# -- a comparison per row only where the rows counted are the compared metric's model's ----------
def test_stores_compared_on_revenue_are_still_compared_after_aggregation(parser):
    # revenue sums order lines; the store is in stores: per store, a HAVING
    parsed = answered(parser, "stores with revenue above 20000")
    assert parsed.query["having"] == [{"dimension": "revenue", "op": ">", "value": 20000}]
    assert parsed.query["dimensions"] == ["store_name"]
    assert not any(f.get("metric") for f in parsed.query.get("filters") or [])


def test_a_comparison_of_what_order_lines_average_per_order_is_still_refused(parser):
    # order lines are not orders: a line's discount is not an order's average discount
    parsed = parser.parse("how many orders had an average discount over 5")
    assert parsed.status == "unanswerable" and parsed.query is None
    assert "nothing to compare it per" in parsed.reason


def test_a_grading_adjective_reads_the_column_of_a_metric_named_like_its_noun(parser):
    # "older than 30": age, which the layer has only as the column of average_age ("age")
    for question, op in (("how many queens were older than 30", ">"),
                         ("how many contestants were younger than 25", "<")):  # fmt: skip
        parsed = answered(parser, question)
        assert parsed.query["filters"] == [
            {"dimension": "age", "metric": "average_age", "op": op, "value": int(question[-2:])}
        ]


def test_a_misspelt_month_is_said_in_the_interpretation(parser):
    parsed = answered(parser, "units sold in febuary")
    assert "'febuary' read as 'february'" in parsed.interpretation
    assert parsed.corrections == {"febuary": "february"}
    assert "read as" not in answered(parser, "units sold in february").interpretation


@pytest.mark.parametrize(
    ("question", "metric", "grain"),
    [
        ("average daily revenue", "revenue", "day"),
        ("what is our average revenue per day", "revenue", "day"),
        ("on average how many orders do we get per week", "orders", "week"),
        ("average number of orders per day", "orders", "day"),  # not average order value
        ("mean monthly units sold", "units_sold", "month"),
    ],
)
def test_an_average_per_period_is_the_totals_of_the_periods_averaged(
    parser, question, metric, grain
):
    parsed = answered(parser, question)
    assert parsed.averaged, parsed.interpretation
    assert parsed.query["metrics"] == [metric] and parsed.query["time_grain"] == grain


def test_a_total_per_period_is_not_averaged(parser):
    parsed = answered(parser, "revenue per day")
    assert not parsed.averaged and parsed.query["time_grain"] == "day"
    assert answered(parser, "average order value").query == {"metrics": ["average_order_value"]}


def test_words_of_wholeness_say_nothing_to_filter_or_group_by(parser):
    # "the entire North region" is the North, "altogether" the total
    parsed = answered(parser, "revenue of the entire North region")
    assert parsed.query["filters"] == [{"dimension": "region", "op": "=", "value": "North"}]
    assert answered(parser, "units sold across the whole North region altogether").query == {
        "metrics": ["units_sold"],
        "filters": [{"dimension": "region", "op": "=", "value": "North"}],
    }
