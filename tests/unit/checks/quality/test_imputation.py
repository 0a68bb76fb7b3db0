from datetime import date

import numpy as np
import polars as pl
import pytest

from dagster_project.checks.quality.checks import impute_missing
from dagster_project.checks.quality.imputation import impute_column
from dagster_project.core.settings import MeshSettings
from demo.simulator import MissingSpec, simulate


@pytest.fixture(scope="module")
def masked(tmp_path_factory):
    """40k simulated order lines; 2% lost their unit_price or quantity (truth kept)."""
    home = tmp_path_factory.mktemp("imputation")
    spec = MissingSpec(rate=0.02, columns=("unit_price", "quantity"))
    simulate(
        MeshSettings(home=str(home)), days=4, scale=40_000, start=date(2025, 3, 3), missing=spec
    )
    lines = pl.read_parquet(str(home / "landing/sales/order_lines/*.parquet"))
    truth = pl.read_parquet(str(home / "registry/simulator/ground_truth/missing/*.parquet"))
    return lines, truth


def _nrmse(filled: pl.DataFrame, truth: pl.DataFrame, column: str, lines: pl.DataFrame) -> float:
    check = truth.filter(pl.col("column") == column).join(
        filled.select("order_id", "line_number", column), on=["order_id", "line_number"]
    )
    error = check[column].cast(pl.Float64) - check["value"]
    return float(np.sqrt((error**2).mean())) / lines[column].drop_nulls().cast(pl.Float64).std()


def test_masked_prices_are_predicted_within_a_tenth_of_their_spread(masked, demo_contracts):
    lines, truth = masked
    contract = demo_contracts["sales/order_lines"]
    filled, done = impute_missing(contract, lines)
    assert filled["unit_price"].null_count() == 0
    assert _nrmse(filled, truth, "unit_price", lines) <= 0.1
    median = lines["unit_price"].median()
    median_fill = lines.with_columns(pl.col("unit_price").fill_null(median))
    assert _nrmse(median_fill, truth, "unit_price", lines) > 0.5  # the baseline it beats
    masked_rows = truth.filter(pl.col("column") == "unit_price").height
    assert filled["unit_price_imputed"].sum() == masked_rows == done[0].filled
    assert done[0].model == "HistGradientBoostingRegressor"
    assert "product_id (mean unit_price)" in done[0].features
    assert not {"order_id", "line_number", "order_ts"} & set(done[0].features)


def test_counts_are_imputed_as_whole_numbers_within_bounds(masked, demo_contracts):
    lines, truth = masked
    filled, result = impute_column(demo_contracts["sales/order_lines"], lines, "quantity")
    assert filled["quantity"].dtype == pl.Int64 and filled["quantity"].min() >= 1
    assert _nrmse(filled, truth, "quantity", lines) <= 0.3
    assert filled["quantity_imputed"].sum() == result.filled > 0


def test_nothing_missing_means_nothing_imputed_and_flags_false(masked, demo_contracts):
    lines, _ = masked
    complete = lines.filter(pl.col("unit_price").is_not_null())
    filled, done = impute_missing(demo_contracts["sales/order_lines"], complete)
    assert done[0].filled == 0 and done[0].model == "none"
    assert filled["unit_price_imputed"].to_list() == [False] * complete.height


def test_the_flag_column_keeps_the_frames_chunks(masked, demo_contracts):
    """Landed files arrive as one chunk each; a flag built as one chunk would make the
    Arrow export behind every write copy the whole load to align them."""
    lines, _ = masked
    complete = lines.filter(pl.col("unit_price").is_not_null()).rechunk()
    halves = pl.concat([complete.head(100), complete.slice(100)], rechunk=False)
    filled, done = impute_missing(demo_contracts["sales/order_lines"], halves)
    assert done[0].filled == 0 and set(filled.n_chunks("all")) == {2}


def test_products_without_imputable_columns_are_untouched(masked, demo_contracts):
    lines, _ = masked
    same, done = impute_missing(demo_contracts["sales/daily_sales"], lines)
    assert same is lines and done == []


def test_the_simulator_masks_only_what_its_ground_truth_lists(tmp_path):
    plain, masked = MeshSettings(home=str(tmp_path / "a")), MeshSettings(home=str(tmp_path / "b"))
    simulate(plain, days=1, scale=5_000, start=date(2025, 3, 3))
    simulate(masked, days=1, scale=5_000, start=date(2025, 3, 3), missing=MissingSpec(0.05))
    before = pl.read_parquet(f"{plain.home}/landing/sales/order_lines/2025-03-03.parquet")
    after = pl.read_parquet(f"{masked.home}/landing/sales/order_lines/2025-03-03.parquet")
    truth = pl.read_parquet(
        f"{masked.home}/registry/simulator/ground_truth/missing/2025-03-03.parquet"
    )
    assert truth.height == 250 and truth["column"].unique().to_list() == ["unit_price"]
    gaps = after.filter(pl.col("unit_price").is_null()).select("order_id", "line_number")
    assert gaps.equals(truth.select("order_id", "line_number"))
    assert after.drop("unit_price").equals(before.drop("unit_price"))
    original = before.join(truth, on=["order_id", "line_number"])
    assert (original["unit_price"] == original["value"]).all()
    with pytest.raises(ValueError, match="missing columns"):
        simulate(masked, days=1, missing=MissingSpec(0.1, columns=("order_id",)))
