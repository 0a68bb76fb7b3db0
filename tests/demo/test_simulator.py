"""The retail simulator: schema, determinism, continuation, ground truth."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from dagster_project.core.settings import MeshSettings
from demo.simulator import (
    AnomalySpec,
    DriftSpec,
    SimulationResult,
    _entity_counts,
    _world,
    simulate,
)

START = date(2024, 3, 1)
SCALE = 5_000

# The demo mesh's spec (DESIGN.md), written out here rather than imported from the module.
EXPECTED = {
    "sales/stores": {
        "store_id": pl.Int64,
        "store_name": pl.String,
        "city": pl.String,
        "region": pl.String,
        "opened_date": pl.Date,
        "size_sqm": pl.Float64,
    },
    "sales/order_lines": {
        "order_id": pl.Int64,
        "line_number": pl.Int64,
        "order_ts": pl.Datetime("us"),
        "order_date": pl.Date,
        "store_id": pl.Int64,
        "customer_id": pl.Int64,
        "product_id": pl.Int64,
        "channel": pl.String,
        "quantity": pl.Int64,
        "unit_price": pl.Float64,
        "discount": pl.Float64,
        "net_amount": pl.Float64,
        "payment_type": pl.String,
    },
    "inventory/products": {
        "product_id": pl.Int64,
        "sku": pl.String,
        "product_name": pl.String,
        "category": pl.String,
        "brand": pl.String,
        "unit_cost": pl.Float64,
        "list_price": pl.Float64,
        "supplier_id": pl.Int64,
        "lead_time_days": pl.Int64,
    },
    "inventory/stock_levels": {
        "snapshot_date": pl.Date,
        "store_id": pl.Int64,
        "product_id": pl.Int64,
        "on_hand": pl.Int64,
        "on_order": pl.Int64,
    },
    "customers/customer_profiles": {
        "customer_id": pl.Int64,
        "full_name": pl.String,
        "email": pl.String,
        "phone": pl.String,
        "birth_date": pl.Date,
        "city": pl.String,
        "country": pl.String,
        "signup_date": pl.Date,
        "loyalty_tier": pl.String,
        "marketing_opt_in": pl.Boolean,
    },
}


def _settings(path: Path) -> MeshSettings:
    return MeshSettings(home=str(path))


def _read(settings: MeshSettings, key: str, file_format: str = "parquet") -> pl.DataFrame:
    domain, product = key.split("/")
    files = settings.files.list_files(settings.landing_uri(domain, product))
    if file_format == "csv":
        schema = EXPECTED[key]
        return pl.concat([pl.read_csv(f, schema=schema) for f in files])
    return pl.concat([pl.read_parquet(f) for f in files])


def _truth(settings: MeshSettings, kind: str) -> pl.DataFrame:
    files = settings.files.list_files(settings.registry_uri("simulator", "ground_truth", kind))
    return pl.concat([pl.read_parquet(f) for f in files])


def _expected_net() -> pl.Expr:
    return (pl.col("quantity") * pl.col("unit_price") * (1 - pl.col("discount"))).round(2)


@pytest.fixture(scope="module")
def landed(tmp_path_factory: pytest.TempPathFactory) -> tuple[MeshSettings, SimulationResult]:
    """One clean simulation shared by the read-only tests."""
    settings = _settings(tmp_path_factory.mktemp("mesh"))
    return settings, simulate(settings, days=4, scale=SCALE, start=START)


def test_columns_and_dtypes(landed: tuple[MeshSettings, SimulationResult]) -> None:
    settings, result = landed
    for key, schema in EXPECTED.items():
        frame = _read(settings, key)
        assert frame.schema == pl.Schema(schema), key
        assert frame.height == result.rows[key] > 0, key
    assert result.rows["sales/order_lines"] == SCALE
    assert result.dates == [START + timedelta(days=i) for i in range(4)]


def test_order_lines_are_consistent(landed: tuple[MeshSettings, SimulationResult]) -> None:
    settings, _ = landed
    lines = _read(settings, "sales/order_lines")
    products = _read(settings, "inventory/products")
    assert lines.select(pl.struct("order_id", "line_number").is_unique().all()).item()
    assert (lines["net_amount"] == lines.select(_expected_net()).to_series()).all()
    assert (lines["net_amount"] > 0).all() and (lines["quantity"] >= 1).all()
    assert lines["discount"].is_between(0, 1, closed="left").all()
    priced = lines.join(products, on="product_id")
    assert (priced["unit_price"] == priced["list_price"]).all()  # no drift, no anomalies
    assert set(lines["channel"]) == {"store", "online"}
    assert set(lines["payment_type"]) <= {"card", "cash", "mobile", "gift_card"}
    assert lines.filter(pl.col("channel") == "online", pl.col("payment_type") == "cash").is_empty()
    assert (lines["order_ts"].dt.date() == lines["order_date"]).all()
    orders = lines.group_by("order_id").agg(
        n=pl.len(),
        max_line=pl.col("line_number").max(),
        stores=pl.col("store_id").n_unique(),
        customers=pl.col("customer_id").n_unique(),
        channels=pl.col("channel").n_unique(),
        stamps=pl.col("order_ts").n_unique(),
    )
    assert orders["n"].is_between(1, 6).all() and (orders["n"] == orders["max_line"]).all()
    assert (orders.select("stores", "customers", "channels", "stamps") == 1).to_numpy().all()


def test_stock_levels_and_stockouts(landed: tuple[MeshSettings, SimulationResult]) -> None:
    settings, _ = landed
    stock = _read(settings, "inventory/stock_levels")
    key = ["snapshot_date", "store_id", "product_id"]
    assert stock.select(pl.struct(key).is_unique().all()).item()
    assert (stock["on_hand"] >= 0).all() and (stock["on_order"] >= 0).all()
    assert (stock["on_hand"] == 0).any()  # some stock-outs happen
    sold = (
        _read(settings, "sales/order_lines")
        .group_by(pl.col("order_date").alias("snapshot_date"), "store_id", "product_id")
        .agg(units=pl.col("quantity").sum())
        .join(stock, on=key, how="left")
    )
    assert sold["on_hand"].null_count() == 0  # stores only sell what they carry
    assert sold.filter(pl.col("on_hand") == 0).is_empty()  # stocked-out pairs sell nothing
    assert (sold["units"] <= sold["on_hand"]).all()


def test_promotions_are_recorded_and_applied(
    landed: tuple[MeshSettings, SimulationResult],
) -> None:
    settings, _ = landed
    promos = _truth(settings, "promotions")
    assert promos.height > 0 and promos["discount"].is_between(0.1, 0.3).all()
    lines = _read(settings, "sales/order_lines").join(
        promos, left_on=["order_date", "product_id"], right_on=["promo_date", "product_id"]
    )
    assert lines.height > 0
    assert (lines["discount"] >= lines["discount_right"]).all()


def test_same_arguments_give_identical_files(tmp_path: Path) -> None:
    kwargs = {"days": 3, "scale": SCALE, "start": START, "anomalies": AnomalySpec(rate=0.02)}
    a = simulate(_settings(tmp_path / "a"), **kwargs)
    b = simulate(_settings(tmp_path / "b"), **kwargs)
    assert a.rows == b.rows and len(a.files) == len(b.files)
    for fa, fb in zip(a.files, b.files, strict=True):
        assert Path(fa).read_bytes() == Path(fb).read_bytes()
        assert pl.read_parquet(fa).equals(pl.read_parquet(fb))


def test_seed_changes_the_data(tmp_path: Path) -> None:
    a = simulate(_settings(tmp_path / "a"), days=1, scale=SCALE, start=START, seed=1)
    b = simulate(_settings(tmp_path / "b"), days=1, scale=SCALE, start=START, seed=2)
    assert not pl.read_parquet(a.files[2]).equals(pl.read_parquet(b.files[2]))


def test_continuation_keeps_entities_and_ids(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    first = simulate(settings, days=3, scale=SCALE, start=START)
    lines_before = _read(settings, "sales/order_lines")
    second = simulate(settings, days=2, scale=SCALE)
    assert second.dates == [START + timedelta(days=3), START + timedelta(days=4)]
    assert second.rows["sales/stores"] == second.rows["inventory/products"] == 0
    lines = _read(settings, "sales/order_lines")
    new = lines.filter(pl.col("order_date") > first.dates[-1])
    assert new["order_id"].min() == lines_before["order_id"].max() + 1
    assert lines.select(pl.struct("order_id", "line_number").is_unique().all()).item()

    stores, products = _read(settings, "sales/stores"), _read(settings, "inventory/products")
    customers = _read(settings, "customers/customer_profiles")
    assert len(settings.files.list_files(settings.landing_uri("sales", "stores"))) == 1
    assert set(lines["store_id"]) <= set(stores["store_id"])
    assert set(lines["product_id"]) <= set(products["product_id"])
    signups = customers.group_by("customer_id").agg(pl.col("signup_date").min())
    ordered = lines.join(signups, on="customer_id", how="left")
    assert ordered["signup_date"].null_count() == 0
    assert (ordered["signup_date"] <= ordered["order_date"]).all()
    state = json.loads(settings.files.read_text(settings.registry_uri("simulator", "state.json")))
    assert state["last_date"] == second.dates[-1].isoformat()
    assert state["next_order_id"] == lines["order_id"].max() + 1
    assert state["next_customer_id"] == customers["customer_id"].max() + 1
    assert state["lines_per_day"] == SCALE / 2


def test_later_days_land_signups_and_profile_updates(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    simulate(settings, days=8, scale=SCALE, start=START)
    uri = settings.landing_uri("customers", "customer_profiles")
    first_day, *later = [pl.read_parquet(f) for f in settings.files.list_files(uri)]
    assert first_day.height >= _entity_counts(SCALE)["customers"]
    later_rows = pl.concat(later)
    initial = set(first_day["customer_id"])
    updates = later_rows.filter(pl.col("customer_id").is_in(list(initial)))
    signups = later_rows.filter(~pl.col("customer_id").is_in(list(initial)))
    assert updates.height > 0 and signups.height > 0
    before = first_day.join(updates, on="customer_id", suffix="_new")
    changed = before.filter(
        (pl.col("loyalty_tier") != pl.col("loyalty_tier_new"))
        | (pl.col("marketing_opt_in") != pl.col("marketing_opt_in_new"))
    )
    assert changed.height == before.height  # an update always changes something
    assert (before["email"] == before["email_new"]).all()
    # At most one customer file per day, and none for a day without signups or updates.
    assert 0 < len(later) <= 7 and all(f.height > 0 for f in later)


def test_default_start_and_continuation(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    first = simulate(settings, days=2, scale=2_000)
    today = datetime.now(UTC).date()
    assert first.dates == [today - timedelta(days=2), today - timedelta(days=1)]
    assert simulate(settings, days=1, scale=1_000).dates == [today]


def test_overlapping_start_and_other_seed_are_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    simulate(settings, days=2, scale=2_000, start=START)
    with pytest.raises(ValueError, match="already landed"):
        simulate(settings, days=1, start=START + timedelta(days=1))
    with pytest.raises(ValueError, match="seed"):
        simulate(settings, days=1, seed=7)
    with pytest.raises(ValueError, match="PARTITION_START"):
        simulate(_settings(tmp_path / "x"), days=1, start=date(2023, 12, 31))
    with pytest.raises(ValueError, match="file_format"):
        simulate(_settings(tmp_path / "y"), days=1, file_format="json")


def test_anomalies_injected_at_rate_with_ground_truth(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    simulate(settings, days=3, scale=SCALE, start=START, anomalies=AnomalySpec(rate=0.03))
    lines = _read(settings, "sales/order_lines")
    truth = _truth(settings, "anomalies")
    assert truth.columns == ["order_id", "line_number", "kind", "column"]
    assert truth.height == pytest.approx(0.03 * lines.height, abs=3)
    assert set(truth["kind"]) == {"spike", "derivation", "contextual"}
    counts = truth["kind"].value_counts()["count"]
    assert counts.max() - counts.min() <= 3  # kinds are balanced
    marked = lines.join(truth, on=["order_id", "line_number"], how="left").join(
        _read(settings, "inventory/products").select("product_id", "list_price"), on="product_id"
    )
    consistent = pl.col("net_amount") == _expected_net()
    by_kind = {k: marked.filter(pl.col("kind") == k) for k in ("spike", "derivation", "contextual")}
    assert marked.filter(pl.col("kind").is_null()).select(consistent.all()).item()
    assert by_kind["spike"].select(consistent.all(), (pl.col("quantity") >= 10).all()).row(0)
    assert not by_kind["derivation"].select(consistent.any()).item()
    ratio = by_kind["contextual"].select(pl.col("unit_price") / pl.col("list_price")).to_series()
    assert ((ratio >= 2.5) | (ratio <= 0.4)).all()
    assert by_kind["contextual"].select(consistent.all()).item()


def test_no_anomalies_without_spec(landed: tuple[MeshSettings, SimulationResult]) -> None:
    settings, _ = landed
    anomalies = settings.registry_uri("simulator", "ground_truth", "anomalies")
    assert settings.files.list_files(anomalies) == []


def test_anomalies_leave_other_lines_untouched(tmp_path: Path) -> None:
    clean = simulate(_settings(tmp_path / "a"), days=1, scale=SCALE, start=START)
    dirty = simulate(
        _settings(tmp_path / "b"), days=1, scale=SCALE, start=START, anomalies=AnomalySpec(0.05)
    )
    a, b = pl.read_parquet(clean.files[2]), pl.read_parquet(dirty.files[2])
    differing = a.join(b, on=["order_id", "line_number"]).filter(
        pl.col("net_amount") != pl.col("net_amount_right")
    )
    assert 0 < differing.height <= round(0.05 * a.height)
    assert a.drop("quantity", "unit_price", "net_amount").equals(
        b.drop("quantity", "unit_price", "net_amount")
    )


def test_price_drift_hits_one_category_after_start(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    drift = DriftSpec(start=START + timedelta(days=3), price_shift_category="Grocery")
    simulate(settings, days=6, scale=SCALE, start=START, drift=drift)
    ratios = (
        _read(settings, "sales/order_lines")
        .join(_read(settings, "inventory/products"), on="product_id")
        .group_by("category", after=pl.col("order_date") >= drift.start)
        .agg(ratio=(pl.col("unit_price") / pl.col("list_price")).mean())
    )
    grocery = ratios.filter(pl.col("category") == "Grocery")
    others = ratios.filter(pl.col("category") != "Grocery")
    assert grocery.filter(~pl.col("after"))["ratio"].item() == pytest.approx(1.0)
    assert grocery.filter(pl.col("after"))["ratio"].item() == pytest.approx(1.25, abs=0.01)
    assert others["ratio"].to_list() == pytest.approx([1.0] * others.height)
    record = json.loads(
        settings.files.read_text(settings.registry_uri("simulator", "ground_truth", "drift.json"))
    )
    assert record["spec"]["price_shift_category"] == "Grocery"
    assert record["dates"] == [(drift.start + timedelta(days=i)).isoformat() for i in range(3)]
    assert set(record["columns"]) == {"unit_price", "net_amount"}


def test_channel_drift_changes_online_share(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    drift = DriftSpec(start=START + timedelta(days=2), online_share=0.7)
    simulate(settings, days=4, scale=SCALE, start=START, drift=drift)
    share = (
        _read(settings, "sales/order_lines")
        .unique("order_id")
        .group_by(after=pl.col("order_date") >= drift.start)
        .agg(online=(pl.col("channel") == "online").mean())
    )
    assert share.filter(~pl.col("after"))["online"].item() < 0.35
    assert share.filter(pl.col("after"))["online"].item() > 0.6


def test_csv_matches_parquet(tmp_path: Path) -> None:
    parquet, csv = _settings(tmp_path / "p"), _settings(tmp_path / "c")
    simulate(parquet, days=2, scale=SCALE, start=START)
    result = simulate(csv, days=2, scale=SCALE, start=START, file_format="csv")
    assert all(f.endswith(".csv") for f in result.files)
    for key in EXPECTED:
        assert _read(csv, key, "csv").equals(_read(parquet, key)), key


@pytest.mark.parametrize("scale", [10_000, 1_000_000, 10_000_000, 100_000_000])
def test_entities_grow_but_stock_rows_stay_moderate(scale: int) -> None:
    counts = _entity_counts(scale)
    assert 8 <= counts["stores"] <= 200 and 50 <= counts["products"] <= 5000
    world = _world(42, counts)
    assert len(world.pair_store) <= 50_000  # stock_levels rows per day
    assert len(set(world.pair_product.tolist())) > counts["products"] // 4
