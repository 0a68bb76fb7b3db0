from dataclasses import replace
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from dagster_project.checks.quality.config import DriftConfig, quality_config
from dagster_project.checks.quality.drift import (
    _evidently,
    _tested,
    _verdicts,
    compare,
    drift_columns,
    evaluate_drift,
    judge,
    resolve_segments,
)
from dagster_project.core.settings import MeshSettings
from dagster_project.lake.storage import DateWindow, Lake
from demo.simulator import DriftSpec, simulate

START = date(2025, 3, 3)  # a Monday: promotions change weekly, on Mondays
DAYS = 17
DRIFT_DAY = START + timedelta(days=DAYS - 1)  # a Wednesday
CALM_DAY = DRIFT_DAY - timedelta(days=1)


@pytest.fixture(scope="module")
def lake(tmp_path_factory, demo_contracts):
    """17 days of order lines in the lake; on the last one Electronics cost twice as
    much and 80% of orders are online (instead of 22%)."""
    home = tmp_path_factory.mktemp("drift")
    settings = MeshSettings(home=str(home))
    spec = DriftSpec(DRIFT_DAY, "Electronics", price_shift_factor=2.0, online_share=0.8)
    simulate(settings, days=DAYS, scale=40_000, start=START, drift=spec)
    lake = Lake(settings)
    for key in ("sales/stores", "inventory/products", "sales/order_lines"):
        lake.write(demo_contracts[key], pl.read_parquet(str(home / "landing" / key / "*.parquet")))
    return lake


@pytest.fixture(scope="module")
def order_lines(demo_contracts):
    contract = demo_contracts["sales/order_lines"]
    return contract, replace(quality_config(contract).drift, sampleRows=4_000)


@pytest.fixture(scope="module")
def drifted(lake, order_lines):
    """A refresh of the last three days: each is judged, the drifted one reported."""
    contract, config = order_lines
    return evaluate_drift(lake, contract, config, DateWindow(CALM_DAY - timedelta(1), DRIFT_DAY))


@pytest.fixture(scope="module")
def calm(lake, order_lines):
    contract, config = order_lines
    return evaluate_drift(lake, contract, config, DateWindow(CALM_DAY, CALM_DAY))


def test_injected_drift_is_found_explained_and_reported(lake, drifted):
    outcome = drifted
    drifted = [c.column for c in outcome.drifted]
    assert {"channel", "unit_price", "payment_type"} <= set(drifted)
    assert "quantity" not in drifted
    assert drifted[0] == "channel"  # ranked: the biggest effect first
    assert outcome.current == f"order_date {DRIFT_DAY}"
    assert outcome.reference == "the 28 days before" and outcome.reference_rows > 20_000
    assert {c.method for c in outcome.columns} == {"wasserstein", "jensenshannon"}
    causes = {c.column: c for c in outcome.causes}
    assert (causes["unit_price"].segment, causes["unit_price"].value) == ("category", "Electronics")
    assert "Electronics" in outcome.describe()
    assert "(3 of 3 periods of the window judged)" in outcome.describe()
    assert [p["drifted"] != [] for p in outcome.summary()] == [False, False, True]
    report = lake.settings.reports_uri("drift", "sales", "order_lines", f"{DRIFT_DAY}.html")
    assert outcome.report_uri == report
    assert "Drift is detected for" in lake.settings.files.read_text(report)  # Evidently's own HTML


def test_an_unchanged_day_raises_no_alarm(calm):
    assert calm.passed and not calm.skipped
    # Well below the drift thresholds (0.1): sampling moves scores by a few thousandths.
    assert max(c.score for c in calm.columns) < 0.08
    assert (
        calm.describe()
        == f"no drift in 5 column(s) of order_date {CALM_DAY} against the 28 days before"
    )


def test_too_few_rows_are_not_judged(lake, order_lines):
    contract, config = order_lines
    outcome = evaluate_drift(lake, contract, replace(config, minRows=10**6), None)
    assert outcome.skipped and not outcome.passed and not outcome.columns
    assert outcome.describe().startswith(f"not judged: 2,174 rows in order_date {DRIFT_DAY}")
    assert "minRows asks for 1,000,000 on each side" in outcome.skipped


def test_a_pinned_version_can_be_the_reference(lake, order_lines):
    contract, config = order_lines
    pinned = replace(config, referenceVersion=0, columns=("channel",))
    outcome = evaluate_drift(lake, contract, pinned, DateWindow(DRIFT_DAY, DRIFT_DAY))
    assert outcome.reference == "Delta version 0"
    assert [c.column for c in outcome.drifted] == ["channel"]


def test_segments_reach_other_products_through_relationships(demo_contracts):
    segments = resolve_segments(
        demo_contracts["sales/order_lines"],
        ("channel", "stores.region", "inventory.products.category"),
    )
    assert [(s.name, s.local, s.lookup) for s in segments] == [
        ("channel", "channel", None),
        ("region", "store_id", ("sales/stores", "store_id", "region")),
        ("category", "product_id", ("inventory/products", "product_id", "category")),
    ]
    with pytest.raises(ValueError, match="neither a column nor reachable"):
        resolve_segments(demo_contracts["sales/order_lines"], ("customers.loyalty.tier",))


def test_samples_bound_the_work(lake, order_lines):
    contract, config = order_lines
    frame = lake.scan(contract.key)
    small = replace(config, sampleRows=2_000)
    columns = {"unit_price": "numerical", "channel": "categorical"}
    outcome = compare(frame, frame, columns, small, segments=["channel"])
    assert outcome.sample_rows[0] == pytest.approx(2_000, abs=5)
    assert outcome.passed


def test_an_unpartitioned_product_is_compared_with_its_previous_version(mesh_home):
    import numpy as np

    from dagster_project.core.contracts import Contract
    from tests.factories import column, contract_document

    document = contract_document(
        [
            column("item_id", "integer", primaryKey=True, primaryKeyPosition=1, required=True),
            column("price", "number"),
        ],
        write_mode="merge",
    )
    document["customProperties"].append({"property": "drift", "value": {"minRows": 100}})
    contract = Contract(document)
    config = quality_config(contract).drift
    lake = Lake(mesh_home)
    rng = np.random.default_rng(0)
    ids = list(range(2_000))
    lake.write(contract, pl.DataFrame({"item_id": ids, "price": rng.normal(10, 1, 2_000)}))
    first = evaluate_drift(lake, contract, config, None)
    assert first.skipped == "no earlier version to compare with" and not first.passed
    lake.write(contract, pl.DataFrame({"item_id": ids, "price": rng.normal(14, 1, 2_000)}))
    second = evaluate_drift(lake, contract, config, None)
    assert (second.reference, second.current) == ("Delta version 0", "version 1")
    assert [c.column for c in second.drifted] == ["price"]
    assert second.causes[0].sentence.startswith("mean price went from 9.9")


def test_verdicts_without_the_report_equal_evidently_reports(lake, order_lines):
    """Periods are judged by Evidently's statistical tests alone (the report's charts are
    built only for the period shown): the same scores and verdicts as its Report, on a
    drifted day and a calm one, with nulls and infinities on one side."""
    contract, config = order_lines
    columns = drift_columns(contract, config)
    found = {}
    for day in (DRIFT_DAY, CALM_DAY):
        ref = lake.scan(contract.key).filter(pl.col("order_date") < CALM_DAY).head(3_000)
        cur = lake.scan(contract.key).filter(pl.col("order_date") == day).head(3_000)
        ref, cur = ref.collect(), cur.collect()
        cur = cur.with_columns(
            pl.when(pl.int_range(pl.len()) % 7 == 0)
            .then(None)
            .otherwise(pl.col("unit_price"))
            .alias("unit_price"),
            pl.when(pl.int_range(pl.len()) == 3)
            .then(float("inf"))
            .otherwise(pl.col("net_amount"))
            .alias("net_amount"),
        )
        from_report = _verdicts(_evidently(ref, cur, columns, config), columns)
        alone = _tested(ref, cur, columns, config)
        assert [(c.column, c.method, c.threshold, c.drifted) for c in alone] == [
            (c.column, c.method, c.threshold, c.drifted) for c in from_report
        ]
        assert [c.score for c in alone] == pytest.approx([c.score for c in from_report])
        found[day] = {c.column for c in alone if c.drifted}
    assert "channel" in found[DRIFT_DAY] and not found[CALM_DAY]


def _readings(rng, n: int, shift: float = 0.0) -> pl.DataFrame:
    """A small day of sensor-like readings: a normal measure and a mostly-zero one."""
    return pl.DataFrame(
        {
            "level": rng.normal(35 + shift * 8, 8, n),
            "rain": np.where(rng.random(n) < 0.9, 0.0, rng.uniform(0, 0.3, n)),
        }
    )


def test_small_samples_of_the_same_data_do_not_drift_on_chance_a_real_shift_does():
    # 144 rows a side, minRows lowered to 50 with the default thresholds (0.1): chance
    # alone moved normed Wasserstein past 0.1 in most of such comparisons.
    rng = np.random.default_rng(7)
    config = DriftConfig(minRows=50)
    columns = {"level": "numerical", "rain": "numerical"}
    calm = [judge(_readings(rng, 144).lazy(), _readings(rng, 144).lazy(), columns, config)]
    calm += [judge(_readings(rng, 144).lazy(), _readings(rng, 144).lazy(), columns, config)
             for _ in range(9)]  # fmt: skip
    assert not any(c.drifted for outcome in calm for c in outcome.columns)
    assert any(c.threshold > 0.1 for c in calm[0].columns)  # raised to what chance reaches
    shifted = judge(_readings(rng, 144).lazy(), _readings(rng, 144, 1.0).lazy(), columns, config)
    assert [c.column for c in shifted.drifted] == ["level"]
