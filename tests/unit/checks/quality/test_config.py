import pytest

from dagster_project.checks.quality.config import AnomalyConfig, DriftConfig, quality_config
from dagster_project.core.contracts import ContractError
from tests.factories import column, contract_document

MEASURED = [
    column("sale_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
    column("amount", "number"),
    column("amount_imputed", "boolean"),
]


def _with(document, *custom):
    document["customProperties"] = [*document.get("customProperties", []), *custom]
    return document


def test_no_custom_properties_switch_nothing_on(make_contract):
    config = quality_config(make_contract())
    assert not config.enabled


def test_demo_order_lines_switch_everything_on(demo_contracts):
    config = quality_config(demo_contracts["sales/order_lines"])
    assert config.anomaly.groups == ("store_id", "product_id", "channel")
    assert config.drift.segments[1] == "stores.region"
    assert config.imputable == ("unit_price",)
    assert quality_config(demo_contracts["sales/daily_sales"]).drift.sameWeekday


def test_true_means_the_defaults(make_contract):
    from dagster_project.core.contracts import Contract

    document = _with(
        contract_document(MEASURED),
        {"property": "anomalyDetection", "value": True},
        {"property": "drift", "value": True},
    )
    config = quality_config(Contract(document))
    assert config.anomaly == AnomalyConfig()
    assert config.drift == DriftConfig()


@pytest.mark.parametrize(
    ("custom", "field"),
    [
        ({"property": "anomalyDetection", "value": {"grups": ["x"]}}, "anomalyDetection/grups"),
        ({"property": "anomalyDetection", "value": {"groups": ["nope"]}}, "anomalyDetection"),
        ({"property": "anomalyDetection", "value": {"detectors": ["magic"]}}, "detectors"),
        ({"property": "drift", "value": "yes"}, "customProperties/drift"),
    ],
)
def test_bad_options_name_the_field(custom, field):
    from dagster_project.core.contracts import Contract

    contract = Contract(_with(contract_document(MEASURED), custom))
    with pytest.raises(ContractError) as error:
        quality_config(contract)
    assert field in error.value.field


def _imputable(name):
    properties = [dict(p) for p in MEASURED]
    for p in properties:
        if p["name"] == name:
            p["customProperties"] = [{"property": "imputable", "value": True}]
    return properties


def test_an_imputable_column_needs_its_flag_column(make_contract):
    assert quality_config(make_contract(_imputable("amount"))).imputable == ("amount",)
    without_flag = [p for p in _imputable("amount") if p["name"] != "amount_imputed"]
    with pytest.raises(ContractError, match="amount_imputed"):
        quality_config(make_contract(without_flag))


def test_keys_and_personal_data_are_never_imputed(make_contract):
    with pytest.raises(ContractError, match="a key"):
        quality_config(make_contract(_imputable("sale_id")))
    personal = _imputable("amount")
    personal[1]["classification"] = "pii"
    with pytest.raises(ContractError, match="personal data"):
        quality_config(make_contract(personal))
