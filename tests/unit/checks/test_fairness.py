"""Fairness across declared segments: planted disparity is found, fair outputs pass,
thin data is not judged, and no finding names a group too small to be a group."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from dagster_project.checks.fairness import (
    FairnessSpec,
    FairnessThresholds,
    fairness_policy,
    measure,
    verdict,
)
from dagster_project.checks.policies import evaluate_policies, policy_check_specs
from dagster_project.core.contracts import Contract, ContractError
from dagster_project.lake.storage import Lake
from dagster_project.products.product import asset_key
from tests.factories import column, contract_document

REGIONS = ["North", "South", "East", "West"]
TH = FairnessThresholds()


def _contract(product: str, properties: list[dict], **custom) -> Contract:
    doc = contract_document(properties, product=product)
    if custom:
        doc["customProperties"] = [{"property": k, "value": v} for k, v in custom.items()]
    return Contract(doc, f"<{product}>")


STORES = _contract(
    "stores",
    [
        column("store_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
        column("region", required=True),
    ],
)


def forecasts_contract(**custom) -> Contract:
    return _contract(
        "forecasts",
        [
            column("day", "date", primaryKey=True, primaryKeyPosition=1, required=True),
            column(
                "store_id",
                "integer",
                primaryKey=True,
                primaryKeyPosition=2,
                required=True,
                relationships=[{"to": "stores.odcs.yaml#/schema/stores/properties/store_id"}],
                customProperties=[{"property": "fairness", "value": {"segments": ["region"]}}],
            ),
            column(
                "predicted",
                "number",
                required=True,
                customProperties=[
                    {
                        "property": "fairness",
                        "value": {
                            "output": "forecast",
                            "actual": "sales.units",
                            "join": {"day": "sold_on"},
                        },
                    }
                ],
            ),
        ],
        **custom,
    )


SALES = _contract(
    "sales",
    [
        column("sold_on", "date", primaryKey=True, primaryKeyPosition=1, required=True),
        column("store_id", "integer", primaryKey=True, primaryKeyPosition=2, required=True),
        column("units", "number", required=True),
    ],
)


def write_forecasts(lake: Lake, noise: dict[str, float], days: int = 60, contract=None) -> Contract:
    """Two stores per region; forecasts off by a region's relative noise."""
    rng = np.random.default_rng(7)
    stores = pl.DataFrame(
        {"store_id": list(range(1, 9)), "region": [r for r in REGIONS for _ in range(2)]}
    )
    grid = stores.join(
        pl.DataFrame({"day": [date(2026, 1, 1) + timedelta(days=i) for i in range(days)]}),
        how="cross",
    )
    units = rng.poisson(40, grid.height).astype(float) + 1
    sd = np.array([noise.get(r, 0.1) for r in grid["region"]])
    predicted = units * (1 + rng.normal(0, sd))
    contract = contract or forecasts_contract()
    lake.write(STORES, stores)
    lake.write(
        SALES,
        grid.select(pl.col("day").alias("sold_on"), "store_id").with_columns(
            units=pl.Series(units)
        ),
    )
    lake.write(
        contract, grid.select("day", "store_id").with_columns(predicted=pl.Series(predicted))
    )
    return contract


def test_planted_forecast_error_in_one_region_is_found(lake: Lake) -> None:
    contract = write_forecasts(lake, {"East": 0.6})
    result = verdict(*measure(lake, contract, TH))
    assert result.judged and not result.passed
    worst = result.metadata["disparities"][0]
    assert (worst["segment"], worst["group"], worst["metric"]) == ("region", "East", "wape")
    assert worst["flagged"] and worst["rows"] == 120 and worst["total"] == 480
    assert "region = East" in result.reason and "WAPE" in result.reason
    assert set(worst["groups"]) == set(REGIONS)  # fairlearn's per-group values


def test_fair_forecast_passes_with_the_widest_gap_named(lake: Lake) -> None:
    contract = write_forecasts(lake, {})
    result = verdict(*measure(lake, contract, TH))
    assert result.judged and result.passed
    assert "within thresholds" in result.reason
    assert not any(d["flagged"] for d in result.metadata["disparities"])


def test_a_contract_threshold_overrides_the_policy_default(lake: Lake) -> None:
    strict = forecasts_contract(fairness={"maxErrorGap": 0.01})
    write_forecasts(lake, {}, contract=strict)
    assert not verdict(*measure(lake, strict, FairnessThresholds.of(strict, TH))).passed


def test_too_few_rows_per_group_is_not_judged_never_passed(lake: Lake) -> None:
    contract = write_forecasts(lake, {"East": 0.6}, days=3)  # 6 rows per region
    result = verdict(*measure(lake, contract, TH))
    assert not result.judged and not result.passed
    assert "fewer than two groups of 30+ rows" in result.reason


def test_missing_ground_truth_is_not_judged(lake: Lake) -> None:
    contract = forecasts_contract()
    lake.write(STORES, pl.DataFrame({"store_id": [1], "region": ["North"]}))
    lake.write(
        contract, pl.DataFrame({"day": [date(2026, 1, 1)], "store_id": [1], "predicted": [1.0]})
    )
    result = verdict(*measure(lake, contract, TH))
    assert not result.judged and "shop/sales is not built yet" in result.reason


PROFILES = _contract(
    "profiles",
    [
        column("person_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
        column("birth_date", "date", required=True, classification="pii"),
        column("country", required=True),
    ],
)


def segments_contract(bands: list[int] | None = (25, 50)) -> Contract:
    birth = {"column": "birth_date", "as": "age_band"}
    if bands:
        birth["ageBands"] = list(bands)
    return _contract(
        "segments",
        [
            column(
                "person_id",
                "integer",
                primaryKey=True,
                primaryKeyPosition=1,
                required=True,
                relationships=[{"to": "profiles.odcs.yaml#/schema/profiles/properties/person_id"}],
                customProperties=[
                    {"property": "fairness", "value": {"segments": ["country", birth]}}
                ],
            ),
            column(
                "segment",
                required=True,
                customProperties=[{"property": "fairness", "value": {"output": "selection"}}],
            ),
        ],
    )


def write_segments(lake: Lake, contract: Contract, old_champions: float) -> None:
    """600 people, a third in each age band; 30% champions, except the oldest band's."""
    rng = np.random.default_rng(11)
    today = date(2026, 12, 1)
    ages = np.repeat([20, 40, 70], 200)
    offsets = rng.integers(30, 300, 600)
    births = [
        today - timedelta(days=int(a * 365.25) + int(o)) for a, o in zip(ages, offsets, strict=True)
    ]
    share = np.where(ages >= 50, old_champions, 0.3)
    segment = np.where(rng.random(600) < share, "champions", "others")
    ids = list(range(600))
    lake.write(
        PROFILES,
        pl.DataFrame({"person_id": ids, "birth_date": births, "country": ["A", "B"] * 300}),
    )
    lake.write(contract, pl.DataFrame({"person_id": ids, "segment": segment.tolist()}))


def test_a_segment_assignment_that_skips_an_age_band_is_found(lake: Lake) -> None:
    contract = segments_contract()
    write_segments(lake, contract, old_champions=0.02)
    found, _ = measure(lake, contract, TH, today=date(2026, 12, 1))
    flagged = {(d.segment, d.metric): d for d in found if d.flagged}
    assert set(flagged) == {
        ("age_band", "selection_rate:champions"),
        ("age_band", "selection_rate:others"),
    }
    worst = flagged["age_band", "selection_rate:champions"]
    assert worst.group == "50+" and worst.rows == 200 and worst.value < 0.1 < worst.rest
    assert not any(d.flagged for d in found if d.segment == "country")
    assert "age_band = 50+" in worst.sentence()


def test_fair_assignment_passes(lake: Lake) -> None:
    contract = segments_contract()
    write_segments(lake, contract, old_champions=0.3)
    assert verdict(*measure(lake, contract, TH, today=date(2026, 12, 1))).passed


def test_ungrouped_dates_or_identifiers_are_never_groups(lake: Lake) -> None:
    contract = segments_contract(bands=None)  # birth dates as they are: one group a person
    write_segments(lake, contract, old_champions=0.02)
    found, skipped = measure(lake, contract, TH)
    assert {d.segment for d in found} == {"country"}
    assert any("age_band" in s for s in skipped)


def test_classifier_error_rate_per_group(lake: Lake) -> None:
    rng = np.random.default_rng(3)
    contract = _contract(
        "churn",
        [
            column("person_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
            column(
                "region",
                required=True,
                customProperties=[{"property": "fairness", "value": "segment"}],
            ),
            column("churned", "boolean", required=True),
            column(
                "predicted_churn",
                "boolean",
                required=True,
                customProperties=[
                    {
                        "property": "fairness",
                        "value": {"output": "classification", "actual": "churned"},
                    }
                ],
            ),
        ],
    )
    region = np.repeat(REGIONS, 100)
    actual = rng.random(400) < 0.3
    flip = rng.random(400) < np.where(region == "West", 0.45, 0.05)
    lake.write(
        contract,
        pl.DataFrame(
            {
                "person_id": range(400),
                "region": region,
                "churned": actual,
                "predicted_churn": actual ^ flip,
            }
        ),
    )
    result = verdict(*measure(lake, contract, TH))
    worst = result.metadata["disparities"][0]
    assert not result.passed and (worst["group"], worst["metric"]) == ("West", "error_rate")


def test_the_policy_applies_only_to_products_that_declare_segments(lake: Lake) -> None:
    contract = write_forecasts(lake, {"East": 0.6})
    specs = policy_check_specs(contract, asset_key(contract.key))
    assert "policy_fairness" in {s.name for s in specs}
    assert "policy_fairness" not in {
        s.name for s in policy_check_specs(STORES, asset_key(STORES.key))
    }
    results = evaluate_policies(contract, None, None, lake)
    assert not results["fairness"].passed and "East" in results["fairness"].reason
    assert "fairness" not in evaluate_policies(STORES, None, None, lake)


def test_the_policy_without_data_is_not_judged() -> None:
    result = fairness_policy().evaluate(forecasts_contract(), None, None, None)
    assert not result.judged and not result.passed


def test_declaration_mistakes_are_named() -> None:
    doc = contract_document(
        [
            column("person_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
            column(
                "score",
                "number",
                customProperties=[{"property": "fairness", "value": {"output": "forecast"}}],
            ),
        ]
    )
    with pytest.raises(ContractError, match="needs its `actual`"):
        FairnessSpec.of(Contract(doc, "<t>"))
    with pytest.raises(ContractError, match="unknown setting"):
        FairnessThresholds.of(forecasts_contract(fairness={"maxGap": 1}), TH)


def test_age_bands_also_band_a_number(lake: Lake) -> None:
    contract = _contract(
        "placements",
        [
            column("entry_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
            column(
                "age",
                "integer",
                required=True,
                customProperties=[
                    {
                        "property": "fairness",
                        "value": {"segment": True, "ageBands": [30], "as": "band"},
                    }
                ],
            ),
            column(
                "outcome",
                required=True,
                customProperties=[{"property": "fairness", "value": {"output": "selection"}}],
            ),
        ],
    )
    ages = [22, 27] * 50 + [41, 55] * 50
    outcome = ["WIN" if i % 3 == 0 else "SAFE" for i in range(100)] + ["SAFE"] * 100
    lake.write(contract, pl.DataFrame({"entry_id": range(200), "age": ages, "outcome": outcome}))
    found, _ = measure(lake, contract, TH)
    wins = next(d for d in found if d.metric == "selection_rate:WIN")
    assert wins.flagged and set(wins.groups) == {"<30", "30+"}


def test_per_group_metrics_are_fairlearns() -> None:
    from fairlearn.metrics import MetricFrame

    from dagster_project.checks.fairness import _group_sums

    rng = np.random.default_rng(3)
    groups = rng.choice(["West", "East", "Nörth"], 2_000)
    actual = rng.gamma(2.0, 5.0, 2_000)
    error = np.abs(actual * rng.uniform(-0.5, 0.6, 2_000))
    ours = _group_sums(groups, actual, error)
    metrics = {
        "a": lambda a, _b: float(a.sum()),
        "b": lambda _a, b: float(b.sum()),
        "n": lambda a, _b: len(a),
    }
    theirs = MetricFrame(
        metrics=metrics, y_true=actual, y_pred=error, sensitive_features=groups
    ).by_group
    assert list(ours) == list(theirs.index)
    for (a, b, n), (_, row) in zip(ours.values(), theirs.iterrows(), strict=True):
        assert (a, b) == pytest.approx((row["a"], row["b"]), rel=1e-12) and n == row["n"]


def test_a_groups_error_bound_does_not_depend_on_the_order_of_its_rows():
    import numpy as np

    from dagster_project.checks.fairness import _wape_lower_bound

    rng = np.random.default_rng(3)
    actuals = rng.integers(0, 20, 500).astype(float)
    errors = np.abs(rng.normal(0, 3, 500))
    shuffled = rng.permutation(500)
    assert _wape_lower_bound(errors, actuals) == _wape_lower_bound(
        errors[shuffled], actuals[shuffled]
    )
