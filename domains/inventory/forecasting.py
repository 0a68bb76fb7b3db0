"""How inventory forecasts demand per store and product.

Every example is a (forecast origin, days ahead) pair: its features are what was known at
the end of the origin day — recent and long-run sales rates, the same weekday's history,
store and product rates, the product's price against its list price — plus the target
day's calendar and the promotion planned for it. A gradient-boosted Poisson model learns
units from them; the backtest forecasts the last days of history from an earlier origin
and compares the model with seasonal naive (the same weekday one or two weeks earlier).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import polars as pl

HORIZON = 14  # days ahead the forecast covers
PROMO_DISCOUNT = 0.05  # a product-level discount from this depth on is a promotion
MIN_ORIGIN_HISTORY = 3  # days of history a training origin should have behind it
MIN_LEVEL = 0.02  # units per day: the exposure of pairs that (almost) never sell
PAIR = ["store_id", "product_id"]
FEATURES = [
    "days_ahead",
    "weekday",
    "day_of_year",
    "units_last_7d",
    "units_last_28d",
    "base_rate",
    "same_weekday_4w",
    "seasonal_naive",
    "store_rate",
    "product_rate",
    "expected_from_margins",
    "discount",
    "promotion",
    "price_known",
    "discount_last_7d",
    "list_price",
    "units_ewm",
    "product_trend",
    "category_trend",
    "history_days",
]


class NotEnoughHistory(ValueError):
    """Fewer days of sales than a backtest needs."""


@dataclass(frozen=True)
class ModelParams:
    """Hyperparameters of the demand model and the size of its training set."""

    max_iter: int = 100
    learning_rate: float = 0.08
    max_leaf_nodes: int = 15
    min_samples_leaf: int = 500
    l2_regularization: float = 1.0
    max_training_rows: int = 100_000
    threads: int = 1  # OpenMP threads: more than one thrashes on a busy 2-core machine

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- the panel: one row per carried pair and day ---------------------------------------


def sales_panel(daily_sales: pl.DataFrame, products: pl.DataFrame) -> pl.DataFrame:
    """Units per store, product and day over the whole history, zero where nothing sold,
    with the product's discount that day (net price against list price, all stores)."""
    days = pl.date_range(
        daily_sales["order_date"].min(), daily_sales["order_date"].max(), eager=True
    ).alias("day")
    pairs = daily_sales.select(PAIR).unique()
    sales = daily_sales.select(
        pl.col("order_date").alias("day"), *PAIR, "units", "net_revenue"
    ).cast({"units": pl.Float64})
    panel = (
        pairs.join(days.to_frame(), how="cross")
        .join(sales, on=["day", *PAIR], how="left")
        .with_columns(pl.col("units", "net_revenue").fill_null(0.0))
        .join(products.select("product_id", "list_price", "category"), on="product_id", how="left")
        .sort(*PAIR, "day")  # sums below add in this order: the same data, the same floats
    )
    discount = (
        panel.group_by("product_id", "day", maintain_order=True)
        .agg(
            units=pl.col("units").sum(),
            revenue=pl.col("net_revenue").sum(),
            price=pl.first("list_price"),
        )
        .select(
            "product_id",
            "day",
            product_discount=pl.when(pl.col("units") > 0)
            .then(1 - pl.col("revenue") / (pl.col("units") * pl.col("price")))
            .clip(-1.0, 1.0)
            .round(6),
        )
    )
    return panel.join(discount, on=["product_id", "day"], how="left").sort(*PAIR, "day")


def origin_stats(panel: pl.DataFrame) -> pl.DataFrame:
    """What is known about each pair at the end of each day (only that day and before)."""
    promo = pl.col("product_discount").fill_null(0.0) >= PROMO_DISCOUNT
    regular = pl.when(~promo).then(pl.col("units"))
    stats = panel.with_columns(
        weekday=pl.col("day").dt.weekday(),
        on_promotion=promo,
        units_last_7d=pl.col("units").rolling_mean(7, min_samples=1).over(PAIR),
        units_last_28d=pl.col("units").rolling_mean(28, min_samples=1).over(PAIR),
        # the regular (no promotion) rate over all history: the least noisy level estimate
        base_rate=(regular.cum_sum() / regular.cum_count()).over(PAIR),
        discount_last_7d=pl.col("product_discount")
        .fill_null(0.0)
        .rolling_mean(7, min_samples=1)
        .over(PAIR),
    ).with_columns(
        same_weekday_4w=pl.col("units")
        .rolling_mean(4, min_samples=1)
        .over([*PAIR, "weekday"], order_by="day"),
        store_rate=pl.col("base_rate").sum().over("store_id", "day"),
        product_rate=pl.col("base_rate").mean().over("product_id", "day"),
        units_ewm=pl.col("units").ewm_mean(half_life=10, adjust=True).over(PAIR),
        # how much history the rates rest on (capped: beyond four weeks it stops mattering)
        history_days=pl.col("units").cum_count().over(PAIR).clip(upper_bound=28),
    )
    total = pl.col("base_rate").sum().over("day")
    product_total = pl.col("base_rate").sum().over("product_id", "day")
    return stats.with_columns(
        expected_from_margins=pl.col("store_rate") * product_total / total,
        product_trend=_trend(stats, "product_id"),
        category_trend=_trend(stats, "category"),
    )


def _trend(stats: pl.DataFrame, group: str) -> pl.Series:
    """The group's last two weeks against its whole history (all its stores pooled)."""
    daily = (
        stats.group_by(group, "day")
        .agg(pl.col("units").sum())
        .sort(group, "day")
        .with_columns(
            trend=(
                pl.col("units").rolling_mean(14, min_samples=1)
                / (pl.col("units").cum_sum() / pl.col("units").cum_count())
            ).over(group)
        )
    )
    return stats.join(daily.select(group, "day", "trend"), on=[group, "day"], how="left")["trend"]


# -- examples: features at an origin for the days after it -------------------------------


def examples(
    stats: pl.DataFrame,
    origins: list[date],
    horizon: int,
    *,
    last_day: date | None = None,
    actual_prices: bool = False,
) -> pl.DataFrame:
    """Feature rows for every pair, origin and day ahead (1..horizon); `units` is the
    actual of the target day where history has it, and `baseline` seasonal naive (the
    same weekday in the last observed week; the origin day's units while history is
    shorter than a week). `last_day` drops targets after it.

    Price is a covariate the retailer sets in advance, known here for the rest of the
    origin's week: promotions run Monday to Sunday, so one running on the origin day holds
    until Sunday, and list price otherwise (`price_known` = 1). Later weeks' prices are
    not known yet (`price_known` = 0, discount 0): the model learns the demand to expect,
    unknown promotions included. Training (`actual_prices`) also reveals the actual
    discount of half the later days (alternating), so the model learns how demand answers
    a known price — what scenarios ask — without losing the unknown-price case."""
    at_origin = stats.filter(pl.col("day").is_in(origins)).select(
        *PAIR,
        pl.col("day").alias("origin"),
        "units_last_7d",
        "units_last_28d",
        "base_rate",
        "store_rate",
        "product_rate",
        "expected_from_margins",
        "discount_last_7d",
        "list_price",
        "category",
        "units_ewm",
        "product_trend",
        "category_trend",
        "history_days",
        pl.col("units").alias("origin_units"),
        pl.col("product_discount").fill_null(0.0).alias("origin_discount"),
        pl.col("on_promotion").alias("origin_promotion"),
    )
    ahead = pl.DataFrame({"days_ahead": range(1, horizon + 1)}, schema={"days_ahead": pl.Int64})
    rows = at_origin.join(ahead, how="cross").with_columns(
        day=pl.col("origin") + pl.duration(days=pl.col("days_ahead")),
    )
    if last_day is not None:
        rows = rows.filter(pl.col("day") <= last_day)
    weeks_back = (pl.col("days_ahead") + 6) // 7
    rows = rows.with_columns(lag_day=pl.col("day") - pl.duration(weeks=weeks_back))
    lagged = stats.select(
        *PAIR,
        pl.col("day").alias("lag_day"),
        pl.col("units").alias("seasonal_naive"),
        "same_weekday_4w",
    )
    actual = stats.select(
        *PAIR, "day", "units", pl.col("product_discount").fill_null(0.0).alias("day_discount")
    )
    same_week = pl.col("day").dt.truncate("1w") == pl.col("origin").dt.truncate("1w")
    known = same_week
    if actual_prices:
        alternate = (pl.col("origin").dt.epoch("d") + pl.col("days_ahead")) % 2 == 0
        known = same_week | alternate
    # Within the week the actual discount is the planned one (the origin day's promotion).
    planned = pl.when(same_week & pl.col("origin_promotion")).then(pl.col("origin_discount"))
    source = pl.col("day_discount") if actual_prices else planned.otherwise(0.0)
    discount = pl.when(known).then(source).otherwise(0.0)
    return with_level(
        rows.join(lagged, on=[*PAIR, "lag_day"], how="left")
        .join(actual, on=[*PAIR, "day"], how="left")
        .with_columns(
            weekday=pl.col("day").dt.weekday(),
            day_of_year=pl.col("day").dt.ordinal_day(),
            discount=discount,
            price_known=known.cast(pl.Int8),
            baseline=pl.coalesce("seasonal_naive", "origin_units"),
        )
        .with_columns(promotion=(pl.col("discount") >= PROMO_DISCOUNT).cast(pl.Int8))
        .drop("lag_day", "origin_discount", "origin_promotion", "origin_units", "day_discount")
        .sort("origin", "day", *PAIR)  # joins do not keep order: training must be reproducible
    )


def feature_matrix(rows: pl.DataFrame) -> np.ndarray:
    return rows.select(pl.col(FEATURES).cast(pl.Float64)).to_numpy()


def with_level(rows: pl.DataFrame) -> pl.DataFrame:
    """`level`: the pair's regular daily rate, the exposure the model scales (a Poisson
    model with an offset), so trees learn multiplicative effects — weekday, promotion,
    trend — instead of re-learning every pair's size."""
    level = pl.coalesce("base_rate", "units_last_28d", "expected_from_margins")
    return rows.with_columns(level=level.fill_null(0.0).clip(MIN_LEVEL))


# -- training and backtest ----------------------------------------------------------------


def backtest_days(history_days: int) -> int:
    """Days held out at the end of history: the horizon, or half the history if shorter."""
    held_out = min(HORIZON, history_days // 2)
    if held_out < 1:
        raise NotEnoughHistory(f"{history_days} day(s) of sales; a backtest needs at least 2")
    return held_out


def training_origins(
    first: date, last_target: date, horizon: int, pairs: int, rows: int
) -> list[date]:
    """Origins spread over history within a budget of training rows. Origins with a few
    days behind them come first (rates from one or two days are mostly noise: a pair that
    has not sold yet gets the minimum level, and its later sales teach the model absurd
    multiples of it), among them those whose whole horizon lies in history; then any."""
    span = (last_target - first).days
    usable = [last_target - timedelta(days=i + 1) for i in range(span)]
    settled = [o for o in usable if (o - first).days + 1 >= MIN_ORIGIN_HISTORY]
    full = [o for o in settled if o + timedelta(days=horizon) <= last_target]
    candidates = full or settled or usable
    ahead = [min(horizon, (last_target - o).days) for o in candidates]
    per_origin = pairs * sum(ahead) / max(1, len(ahead))
    wanted = max(1, min(len(candidates), int(rows // max(1.0, per_origin))))
    picks = np.unique(np.linspace(0, len(candidates) - 1, wanted).round().astype(int))
    return [candidates[i] for i in picks]


def fit_regressor(rows: pl.DataFrame, params: ModelParams):
    """A Poisson gradient-boosted regressor of units per unit of `level` (weighted by it)."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    model = HistGradientBoostingRegressor(
        loss="poisson",
        max_iter=params.max_iter,
        learning_rate=params.learning_rate,
        max_leaf_nodes=params.max_leaf_nodes,
        min_samples_leaf=params.min_samples_leaf,
        l2_regularization=params.l2_regularization,
        early_stopping=False,
        random_state=0,
        # The law of demand as a constraint: a deeper discount never lowers the forecast
        # (what-if scenarios on price depend on it).
        monotonic_cst=[1 if f in {"discount", "promotion"} else 0 for f in FEATURES],
    )
    features = feature_matrix(rows)
    # A feature history cannot show yet (e.g. last week's units in the first week) stays
    # constant rather than all-missing, which the binner rejects.
    empty = np.isnan(features).all(axis=0)
    features[:, empty] = 0.0
    level = rows["level"].to_numpy()
    with threadpool_limits(limits=params.threads, user_api="openmp"):
        model.fit(features, rows["units"].to_numpy() / level, sample_weight=level)
    return model


def accuracy(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """MAE, WAPE (sum of absolute errors over sum of actuals) and bias (relative)."""
    total = float(actual.sum()) or 1.0
    errors = predicted - actual
    return {
        "mae": float(np.abs(errors).mean()),
        "wape": float(np.abs(errors).sum() / total),
        "bias": float(errors.sum() / total),
    }


@dataclass
class TrainedForecast:
    """A demand model and its backtest: trained on history up to `origin`, scored on the
    `held_out` days after it (what is registered is exactly what was evaluated)."""

    model: Any  # dagster_project.ml.interval_model.IntervalModel
    origin: date
    held_out: int
    metrics: dict[str, float]
    backtest: pl.DataFrame  # the held-out rows with units, baseline and the model's bounds
    training_rows: int


def train(
    daily_sales: pl.DataFrame, products: pl.DataFrame, params: ModelParams | None = None
) -> TrainedForecast:
    """Fit the model on history before the backtest window and evaluate it on the window."""
    from dagster_project import IntervalModel

    params = params or ModelParams()
    stats = origin_stats(sales_panel(daily_sales, products))
    first, last = stats["day"].min(), stats["day"].max()
    held_out = backtest_days((last - first).days + 1)
    origin = last - timedelta(days=held_out)
    # Two days of sales leave no day to train on before the held-out one: the cold start
    # trains on that day and says so (`in_sample_backtest`); from three days on, never.
    in_sample = origin == first
    target_end = last if in_sample else origin
    pairs = stats.select(PAIR).n_unique()
    origins = training_origins(first, target_end, HORIZON, pairs, params.max_training_rows)
    training = examples(stats, origins, HORIZON, last_day=target_end, actual_prices=True)
    estimator = fit_regressor(training, params)
    held = examples(stats, [origin], held_out, last_day=last)
    inputs = model_inputs(held)
    model = IntervalModel.calibrate(
        estimator,
        FEATURES,
        inputs,
        held["units"].to_numpy(),
        exposure="level",
        threads=params.threads,
    )
    bounds = model.bounds(inputs)
    held = held.with_columns(
        prediction=pl.Series(bounds["prediction"].to_numpy()),
        lower=pl.Series(bounds["lower"].to_numpy()),
        upper=pl.Series(bounds["upper"].to_numpy()),
    )
    return TrainedForecast(
        model=model,
        origin=origin,
        held_out=held_out,
        metrics={**backtest_metrics(held), "in_sample_backtest": float(in_sample)},
        backtest=held,
        training_rows=training.height,
    )


def backtest_metrics(held: pl.DataFrame) -> dict[str, float]:
    """The model's and seasonal naive's accuracy on held-out rows, and interval coverage."""
    actual = held["units"].to_numpy()
    model = accuracy(actual, held["prediction"].to_numpy())
    baseline = accuracy(actual, held["baseline"].to_numpy())
    inside = (held["units"] >= held["lower"]) & (held["units"] <= held["upper"])
    return {
        **model,
        **{f"baseline_{k}": v for k, v in baseline.items()},
        "wape_improvement": 1 - model["wape"] / baseline["wape"] if baseline["wape"] else 0.0,
        "interval_coverage": float(inside.mean()),
        "backtest_rows": float(held.height),
    }


# -- scoring --------------------------------------------------------------------------------

MODEL_NAME = "inventory.demand_model"
EXPERIMENT = "inventory/demand_model"


def model_inputs(rows: pl.DataFrame) -> pd.DataFrame:
    """What the registered model takes: the features and the exposure, as floats."""
    return rows.select(pl.col(*FEATURES, "level").cast(pl.Float64)).to_pandas()


def future_rows(
    daily_sales: pl.DataFrame, products: pl.DataFrame, horizon: int = HORIZON
) -> pl.DataFrame:
    """Feature rows for the `horizon` days after the last day of sales."""
    stats = origin_stats(sales_panel(daily_sales, products))
    return examples(stats, [stats["day"].max()], horizon)


def held_out_rows(daily_sales: pl.DataFrame, products: pl.DataFrame) -> pl.DataFrame:
    """The backtest's rows: the last days of history forecast from before them."""
    stats = origin_stats(sales_panel(daily_sales, products))
    first, last = stats["day"].min(), stats["day"].max()
    held_out = backtest_days((last - first).days + 1)
    return examples(stats, [last - timedelta(days=held_out)], held_out, last_day=last)


def score(model: Any, rows: pl.DataFrame) -> pl.DataFrame:
    """`rows` with `prediction`, `lower` and `upper` from a demand model: as loaded from
    the registry (pyfunc) or as trained (an IntervalModel)."""
    predict = model.bounds if hasattr(model, "bounds") else model.predict
    bounds = predict(model_inputs(rows))
    return rows.with_columns(
        prediction=pl.Series(bounds["prediction"].to_numpy(), dtype=pl.Float64),
        lower=pl.Series(bounds["lower"].to_numpy(), dtype=pl.Float64),
        upper=pl.Series(bounds["upper"].to_numpy(), dtype=pl.Float64),
    )


def as_forecast(scored: pl.DataFrame, model_version: str) -> pl.DataFrame:
    """Scored rows in the shape of `inventory/demand_forecast`."""
    return scored.select(
        pl.col("day").alias("forecast_date"),
        *PAIR,
        pl.col("prediction").round(3).alias("predicted_units"),
        pl.col("lower").round(3).alias("lower_units"),
        pl.col("upper").round(3).alias("upper_units"),
        pl.lit(model_version).alias("model_version"),
    )
