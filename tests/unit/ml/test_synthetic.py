from datetime import date, timedelta

import dagster as dg
import numpy as np
import polars as pl
import pytest

from dagster_project.assembly.locations import product_assets
from dagster_project.core.contracts import Contract
from dagster_project.lake.resource import MeshResource
from dagster_project.ml.synthetic import (
    GaussianCopula,
    exact_copies,
    quality_report,
    synthesize,
    synthetic_contract,
)
from dagster_project.ml.synthetic_product import synthetic_products
from tests.factories import column, contract_document
from tests.small_mesh import write_small_mesh


@pytest.fixture
def people() -> tuple[Contract, pl.DataFrame]:
    """Correlated numbers, a category tied to them, dates, a boolean and PII."""
    rng = np.random.default_rng(0)
    n = 800
    age = rng.integers(18, 80, n)
    income = 20_000 + 900 * age + rng.normal(0, 8_000, n)
    tier = np.where(income > 70_000, "gold", np.where(income > 50_000, "silver", "bronze"))
    frame = pl.DataFrame(
        {
            "person_id": np.arange(1, n + 1),
            "email": [f"person{i}@real.example" for i in range(n)],
            "age": age,
            "income": income.round(2),
            "tier": tier,
            "joined": [date(2020, 1, 1) + timedelta(days=int(d)) for d in rng.integers(0, 1500, n)],
            "active": rng.uniform(size=n) < 0.3,
        }
    )
    document = contract_document(
        [
            column("person_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
            column("email", classification="pii"),
            column("age", "integer", required=True, logicalTypeOptions={"minimum": 18}),
            column("income", "number", logicalTypeOptions={"minimum": 0}),
            column("tier", enum=[{"value": v} for v in ("bronze", "silver", "gold")]),
            column("joined", "date"),
            column("active", "boolean"),
        ],
        product="people",
    )
    return Contract(document), frame


def test_the_contract_is_respected(people):
    contract, real = people
    synthetic = GaussianCopula(contract, seed=1).fit(real).sample(1000)
    assert synthetic.schema == contract.polars_schema
    assert synthetic.height == 1000
    assert synthetic["person_id"].is_unique().all()
    assert not set(synthetic["person_id"]) & set(real["person_id"])  # fresh keys
    assert set(synthetic["tier"]) <= {"bronze", "silver", "gold"}
    assert synthetic["age"].min() >= 18 and synthetic["income"].min() >= 0
    assert synthetic["age"].null_count() == 0


def test_personal_data_is_generated_never_copied(people):
    contract, real = people
    synthetic = GaussianCopula(contract).fit(real).sample(500)
    assert not set(synthetic["email"]) & set(real["email"])
    assert synthetic["email"].str.contains("@").all()
    assert exact_copies(real, synthetic) == 0


def test_marginals_and_dependencies_are_preserved(people):
    contract, real = people
    synthetic = GaussianCopula(contract, seed=3).fit(real).sample(4000)
    corr = lambda f: np.corrcoef(f["age"].to_numpy(), f["income"].to_numpy())[0, 1]  # noqa: E731
    assert abs(corr(synthetic) - corr(real)) < 0.05
    rich = synthetic.filter(pl.col("income") > 75_000)
    assert (rich["tier"] == "gold").mean() > 0.8  # the category follows the number
    report = quality_report(
        real, synthetic, contract, ["age", "income", "tier", "joined", "active"]
    )
    assert report["column_shapes"] > 0.9 and report["column_pair_trends"] > 0.9


def test_quality_drops_when_dependencies_are_lost(people):
    contract, real = people
    columns = ["age", "income", "tier"]
    shuffled = real.with_columns(pl.col("income").shuffle(seed=1), pl.col("tier").shuffle(seed=2))
    assert quality_report(real, real, contract, columns)["quality"] == pytest.approx(1.0)
    broken = quality_report(real, shuffled, contract, columns)
    assert broken["column_shapes"] == pytest.approx(1.0)
    assert broken["column_pair_trends"] < 0.8


def test_synthesize_reports_quality_and_privacy(people):
    contract, real = people
    result = synthesize(contract, real, rows=300)
    m = result.metrics
    assert m["rows"] == 300 and m["exact_copies"] == 0 and m["modelled_copies"] == 0
    assert m["pii_generated"] == ["email"] and m["keys_generated"] == ["person_id"]
    assert 0 < m["dcr_median"] < 1 and m["quality"] > 0.85
    assert "real.example" not in str(m)


def test_opted_in_products_get_a_synthetic_asset(lake, demo_contracts):
    write_small_mesh(lake, demo_contracts)
    source = demo_contracts["customers/customer_profiles"]
    target = synthetic_contract(source)
    assert target.key == "customers/customer_profiles_synthetic"
    assert target.write_mode == "overwrite" and target.pii_columns == source.pii_columns
    assets = product_assets(synthetic_products(list(demo_contracts.values())))
    keys = sorted(k.to_user_string() for a in assets for k in a.keys)
    assert keys == [
        "customers/customer_profiles_synthetic",
        "customers/customer_segments_synthetic",
    ]
    result = dg.materialize(
        assets,
        resources={"mesh": MeshResource(home=lake.settings.home)},
        selection=[a.key for a in assets],
    )
    assert result.success
    assert all(e.passed for e in result.get_asset_check_evaluations())
    event = next(
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[-1] == "customer_profiles_synthetic"
    )
    metadata = event.materialization.metadata
    assert metadata["privacy_exact_copies"].value == 0
    assert metadata["pii_generated_fresh"].value == "full_name, email, phone, birth_date" or (
        set(metadata["pii_generated_fresh"].value.split(", "))
        == {"full_name", "email", "phone", "birth_date"}
    )
    written = lake.read("customers/customer_profiles_synthetic")
    real = lake.read("customers/customer_profiles")
    assert written.height == real.height
    assert not set(written["email"]) & set(real["email"])


def test_distance_to_closest_record_is_gowers(people):
    from dagster_project.ml.synthetic import distance_to_closest_record

    contract, real = people
    real = real.head(60)
    columns = ["age", "tier", "active"]  # a number and two values compared as text
    copies = real.head(5)
    changed = copies.with_columns(tier=pl.lit("platinum"), active=~pl.col("active"))
    found = distance_to_closest_record(real, pl.concat([copies, changed]), contract, columns)
    assert list(found[:5]) == [0.0] * 5  # a real row: no distance
    # Per row, the closest real row by hand: |age gap| / age range, and 1 per other value.
    span = real["age"].max() - real["age"].min()
    for row, got in zip(changed.iter_rows(named=True), found[5:], strict=True):
        expected = min(
            (
                abs(row["age"] - r["age"]) / span
                + (row["tier"] != r["tier"])
                + (row["active"] != r["active"])
            )
            / len(columns)
            for r in real.iter_rows(named=True)
        )
        assert got == pytest.approx(expected)
