import copy

import pytest
import yaml

from dagster_project.core.errors import UserError
from dagster_project.metadata.semantics import SemanticError, load_semantic_layer, parse_semantics


@pytest.fixture(scope="module")
def layer():
    return load_semantic_layer()


def test_the_mesh_layer_fits_its_contracts(layer):
    assert layer.problems() == []
    assert {"revenue", "units_sold", "orders", "average_order_value", "stock_on_hand"} <= set(
        layer.metrics
    )
    assert layer.metric("revenue").column == "net_amount"
    assert layer.metric("revenue").product == "sales/order_lines"
    for metric in layer.list_metrics():
        for part in layer.base_metrics(metric):
            if part.column:
                assert part.column in layer.contracts[part.product].column_names
    assert {g.term for g in layer.glossary} >= {"revenue", "basket", "stock-out"}


def test_joins_cross_domains_through_entity_keys(layer):
    steps = layer.join_targets("sales/order_lines")
    assert {(s.right, s.column) for s in steps} == {
        ("sales/stores", "store_id"),
        ("inventory/products", "product_id"),
        ("customers/customer_profiles", "customer_id"),
        ("customers/customer_segments", "customer_id"),
    }
    (step,) = layer.join_path("inventory/stock_levels", "sales/stores")
    assert (step.column, step.entity) == ("store_id", "store")
    with pytest.raises(KeyError, match="cannot be joined"):
        layer.join_path("sales/stores", "sales/order_lines")  # would fan out rows
    assert ("sales/order_lines", "sales/stores", "store_id") in layer.shared_keys()


def test_dimensions_resolve_nearest_first_and_ambiguity_is_an_error(layer):
    dim, path = layer.resolve_dimension("region", "sales/order_lines")
    assert (dim.product, [s.right for s in path]) == ("sales/stores", ["sales/stores"])
    dim, path = layer.resolve_dimension("stores.city", "sales/order_lines")
    assert dim.column == "city" and dim.product == "sales/stores"
    names = {d.name for d in layer.list_dimensions("sales/order_lines")}
    assert {"channel", "region", "category", "loyalty_tier", "rfm_segment"} <= names
    assert "email" not in names and "full_name" not in names
    renamed = _documents(lambda docs: docs["customers"]["models"][0]["dimensions"][0].pop("name"))
    ambiguous = parse_semantics(renamed, layer.contracts.values())
    with pytest.raises(KeyError, match="ambiguous"):
        ambiguous.resolve_dimension("city", "sales/order_lines")


def _documents(change):
    from dagster_project.metadata.semantics import semantics_files

    docs = {}
    for path in semantics_files():
        doc = yaml.safe_load(path.read_text())
        docs[doc["domain"]] = doc
    docs = copy.deepcopy(docs)
    change(docs)
    return [(name, doc) for name, doc in docs.items()]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            lambda d: d["sales"]["metrics"][0].update(column="net_amout"),
            "metric revenue: sales/order_lines has no column 'net_amout'",
        ),
        (
            lambda d: d["sales"]["metrics"][0].update(column="channel"),
            "metric revenue: sum of channel, a string column",
        ),
        (
            lambda d: d["customers"]["models"][0]["dimensions"].append({"column": "email"}),
            "dimension email is a PII column",
        ),
        (
            lambda d: d["sales"]["models"][1].update(time_dimension="channel"),
            "time dimension channel is string",
        ),
        (
            lambda d: d["sales"]["metrics"][3].update(
                ratio={"numerator": "revenue", "denominator": "stock_on_hand"}
            ),
            "ratio part stock_on_hand is on another model",
        ),
        (
            lambda d: d["inventory"]["metrics"][0].update(synonyms=["turnover"]),
            "metric synonym 'turnover' names both revenue and stock_on_hand",
        ),
        (
            lambda d: d["sales"]["metrics"][0].update(better="up"),
            "metric revenue: better is 'up', not 'higher' or 'lower'",
        ),
        (
            lambda d: d["sales"]["entities"][0].update(product="order_lines"),
            "entity store: sales/order_lines's primary key is not store_id (an entity's "
            "product has one row per store_id: make store_id its contract's primaryKey",
        ),
        (  # a second declaration of a name would silently replace the first
            lambda d: d["dragracer"]["metrics"].append({**d["sales"]["metrics"][0]}),
            "metric revenue is declared twice: in sales (domain sales) and in dragracer",
        ),
        (
            lambda d: d["dragracer"]["entities"].append(
                {"name": "shop", "key": "store_id", "product": "episodes"}
            ),
            "entity shop in dragracer has the key store_id of entity store in sales",
        ),
    ],
)
def test_validation_names_what_does_not_fit(layer, change, problem):
    broken = parse_semantics(_documents(change), layer.contracts.values())
    assert any(problem in p for p in broken.problems()), broken.problems()
    with pytest.raises(SemanticError):
        broken.validate()


def test_a_metric_two_domains_declare_is_a_users_mistake_naming_both_files(
    layer, tmp_path, monkeypatch
):
    sales = next(doc for name, doc in _documents(lambda d: None) if name == "sales")
    monkeypatch.chdir(tmp_path)
    files = []
    for domain in ("sales", "dragracer"):
        doc = {"domain": domain, "models": [], "metrics": []}
        if domain == "dragracer":  # the sales metric again, on one of dragracer's own products
            model = {"product": "episodes", "time_dimension": "airdate"}
            doc |= {"models": [model], "metrics": [{"name": "revenue", "model": "episodes",
                                                      "agg": "count"}]}  # fmt: skip
        else:
            doc = sales
        path = tmp_path / "domains" / domain / "semantics.yaml"
        path.parent.mkdir(parents=True)
        path.write_text(yaml.safe_dump(doc))
        files.append(path)
    with pytest.raises(UserError) as raised:
        load_semantic_layer(files, layer.contracts.values())
    message, fix = raised.value.lines()
    assert message == (
        "metric revenue is declared twice: in domains/sales/semantics.yaml (domain sales) and "
        "in domains/dragracer/semantics.yaml"
    )
    assert fix.startswith("Rename it in one of them")


def test_join_keys_of_different_types_are_rejected(layer, make_contract):
    from tests.factories import column

    store_text = make_contract(
        [column("store_id", "string", primaryKey=True, primaryKeyPosition=1, required=True)],
        domain="shop",
        product="kiosks",
    )
    mixed = parse_semantics(_documents(lambda d: None), [*layer.contracts.values(), store_text])
    assert any("join key store_id" in p for p in mixed.problems())


def test_a_dimension_on_the_entitys_own_product_wins_a_tie_through_the_same_key():
    """Portal surveys: `genus` is on `species` (the species entity's product) and on
    `species_captures` (keyed by species_id too); "captures by genus" takes the species'."""
    from dagster_project.core.contracts import Contract
    from tests.factories import column, contract_document

    def contract(product, *columns):
        return Contract(contract_document(list(columns), domain="portal", product=product), "-")

    key = {"primaryKey": True, "primaryKeyPosition": 1, "required": True}
    contracts = [
        contract("surveys", column("record_id", "integer", **key), column("species_id"),
                 column("plot_id", "integer")),
        contract("species", column("species_id", **key), column("genus")),
        contract("species_captures", column("species_id", **key), column("genus")),
        contract("plots", column("plot_id", "integer", **key), column("genus")),
    ]  # fmt: skip
    doc = {
        "domain": "portal",
        "entities": [
            {"name": "species", "key": "species_id", "product": "species"},
            {"name": "plot", "key": "plot_id", "product": "plots"},
        ],
        "models": [
            {"product": p, "dimensions": [{"column": "genus"}]}
            for p in ("species", "species_captures")
        ]
        + [{"product": "surveys", "dimensions": [{"column": "species_id"}]}],
        "metrics": [{"name": "captures", "model": "surveys", "agg": "count"}],
    }
    layer = parse_semantics([("portal", doc)], contracts)
    dim, path = layer.resolve_dimension("genus", "portal/surveys")
    assert dim.product == "portal/species" and [s.right for s in path] == ["portal/species"]
    doc["models"].append({"product": "plots", "dimensions": [{"column": "genus"}]})
    tied = parse_semantics([("portal", doc)], contracts)  # through another key: still tied
    with pytest.raises(KeyError, match="ambiguous"):
        tied.resolve_dimension("genus", "portal/surveys")


def test_a_broken_domain_is_left_out_and_every_other_domain_keeps_its_layer(
    layer, tmp_path, monkeypatch
):
    import shutil

    from dagster_project.metadata import semantics

    files = []
    for source in semantics.semantics_files():
        files.append(tmp_path / source.parent.name / source.name)
        files[-1].parent.mkdir()
        shutil.copy(source, files[-1])
    broken = tmp_path / "dragracer/semantics.yaml"
    unreadable = tmp_path / "inventory/semantics.yaml"
    broken.write_text(broken.read_text().replace("key: season\n", "key: season_no\n", 1))
    unreadable.write_text("entities: [unclosed\n")
    monkeypatch.setattr(semantics, "semantics_files", lambda: files)
    isolated = load_semantic_layer(contracts=layer.contracts.values())
    assert set(isolated.excluded) == {str(broken), str(unreadable)}
    assert (
        "entity season: dragracer/season_summary has no column 'season_no'"
        in (isolated.excluded[str(broken)])
    )
    assert any("not valid YAML" in note for note in isolated.excluded_notes())
    assert isolated.problems() == [] and "revenue" in isolated.metrics
    assert "episode_count" not in isolated.metrics and "stock_on_hand" not in isolated.metrics
    with pytest.raises(SemanticError, match=r"dragracer/semantics\.yaml: entity season"):
        load_semantic_layer([broken], layer.contracts.values())
