from pathlib import Path

import polars as pl
import pytest
import yaml

from dagster_project.access.policy import (
    AccessDenied,
    AccessPolicy,
    GovernedReader,
    PolicyError,
    masked_document,
    partial_text,
)
from dagster_project.core.contracts import Contract
from tests.small_mesh import write_small_mesh

PROFILES = "customers/customer_profiles"


@pytest.fixture
def reader(lake, demo_contracts) -> GovernedReader:
    write_small_mesh(lake, demo_contracts)
    return GovernedReader(lake)


def audit(reader: GovernedReader) -> pl.DataFrame:
    return reader.lake.read("governance/access_audit").sort("read_at")


def test_the_governance_policy_loads_from_the_workspace():
    policy = AccessPolicy.load()
    assert {"steward", "analyst", "customer_care", "partner"} <= set(policy.roles)
    assert policy.audit_contract.key == "governance/access_audit"
    assert policy.audit_contract.write_mode == "append"


def test_decisions_follow_grants_and_masks(demo_contracts):
    policy = AccessPolicy.load()
    profiles = demo_contracts[PROFILES]
    analyst = policy.decide("analyst", profiles)
    assert analyst.allowed
    assert analyst.masks == {
        "full_name": "hash",
        "email": "partial",
        "phone": "partial",
        "birth_date": "drop",
    }
    care = policy.decide("customer_care", profiles)
    assert care.masks == {"birth_date": "drop"}  # contact details in clear
    partner = policy.decide("partner", profiles)
    assert partner.masks["email"] == "hash" and partner.masks["full_name"] == "drop"
    assert policy.decide("steward", profiles).masks == {}
    assert not policy.decide("customer_care", demo_contracts["sales/order_lines"]).allowed
    assert not policy.decide("intruder", profiles).allowed
    assert not policy.decide("analyst", profiles, ["no_such_column"]).allowed


def test_read_masks_personal_data_and_audits(reader):
    real = reader.lake.read(PROFILES).sort("customer_id")
    frame = reader.read(PROFILES, "analyst", principal="cli:kim", channel="cli").sort("customer_id")
    assert "birth_date" not in frame.columns
    assert frame["city"].to_list() == real["city"].to_list()  # not personal: in clear
    assert frame["email"][0] == "p***@secret.example"
    assert frame["phone"][0].endswith("0000") and "*" in frame["phone"][0]
    hashed = frame["full_name"].to_list()
    assert not set(hashed) & set(real["full_name"]) and all(len(h) == 16 for h in hashed)
    again = reader.read(PROFILES, "analyst", ["customer_id", "full_name"]).sort("customer_id")
    assert again["full_name"].to_list() == hashed  # a stable pseudonym: joins still work
    log = audit(reader)
    assert log.height == 2
    first = log.row(0, named=True)
    assert first["principal"] == "cli:kim" and first["channel"] == "cli"
    assert first["decision"] == "allow" and first["rows"] == real.height
    assert "birth_date:drop" in first["masked_columns"]
    assert "birth_date" not in first["columns"]


def test_denied_reads_raise_and_are_audited(reader):
    with pytest.raises(AccessDenied, match="no grant"):
        reader.read("sales/order_lines", "customer_care", principal="cli:eve")
    with pytest.raises(AccessDenied, match="unknown role"):
        reader.read(PROFILES, "nobody")
    with pytest.raises(AccessDenied, match="no product"):
        reader.read("sales/nothing", "steward")
    log = audit(reader)
    assert log["decision"].to_list() == ["deny", "deny", "deny"]
    assert log["rows"].null_count() == 3 and log["columns"].to_list() == ["", "", ""]


def test_limit_columns_and_lazy_scan(reader):
    frame = reader.read(PROFILES, "partner", ["customer_id", "email"], limit=2)
    assert frame.columns == ["customer_id", "email"] and frame.height == 2
    lazy = reader.scan(PROFILES, "analyst").filter(pl.col("loyalty_tier") == "gold").collect()
    assert lazy.height == 2 and lazy["email"].str.contains(r"\*\*\*@").all()
    assert audit(reader)["rows"].to_list() == [2, None]  # a scan's rows are not known


def test_the_policy_file_can_be_chosen_by_env(tmp_path: Path, monkeypatch, reader):
    document = yaml.safe_load(Path(AccessPolicy.load().path).read_text())
    document["roles"]["analyst"]["masks"] = {"email": "drop"}
    document["audit"]["contract"] = str(AccessPolicy.load().audit_contract_path)
    custom = tmp_path / "policy.yaml"
    custom.write_text(yaml.safe_dump(document))
    monkeypatch.setenv("MESH_ACCESS_POLICY", str(custom))
    frame = GovernedReader(reader.lake).read(PROFILES, "analyst")
    assert "email" not in frame.columns


def test_bad_policies_are_rejected():
    with pytest.raises(PolicyError, match="unknown mask"):
        AccessPolicy.from_document(
            {
                "roles": {"r": {"masks": {"email": "blur"}}},
                "audit": {"product": "a", "contract": "b"},
            }
        )
    with pytest.raises(PolicyError, match="audit"):
        AccessPolicy.from_document({"roles": {}})


def test_masked_contract_is_valid_and_retyped(demo_contracts):
    profiles = demo_contracts[PROFILES]
    decision = AccessPolicy.load().decide("analyst", profiles)
    masked = Contract(masked_document(profiles, decision))
    assert "birth_date" not in masked.column_names
    assert masked.column("full_name").logical_type == "string"
    assert masked.column("email").is_pii  # pseudonymised data is still personal data


def test_partial_text():
    assert partial_text("ana.ruiz@example.com") == "a***@example.com"
    assert partial_text("+44 7700 900123") == "+** **** **0123"
    assert partial_text("Ada Lovelace") == "A*** L***"


def test_default_grants_follow_classification_for_a_new_domain(make_contract):
    """A domain nobody wrote into access.yaml: analysts read it, personal data masked,
    unless a column is restricted; `readers` says who gets what."""
    from tests.factories import column

    policy = AccessPolicy.load()
    stations = make_contract(
        [
            column("station_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
            column("keeper_email", classification="pii", required=True),
        ],
        domain="hydrology",
        product="stations",
    )
    decision = policy.decide("analyst", stations)
    assert decision.allowed and decision.masks == {"keeper_email": "hash"}  # default_mask
    assert policy.readers(stations)["analyst"] == "personal data masked (keeper_email)"
    secret = make_contract(
        [
            column("station_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
            column("dam_weakness", classification="restricted", required=True),
        ],
        domain="hydrology",
        product="inspections",
    )
    assert not policy.decide("analyst", secret).allowed
    assert set(policy.readers(secret)) == {"steward"}
