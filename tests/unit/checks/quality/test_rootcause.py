import numpy as np
import polars as pl

from dagster_project.checks.quality.rootcause import explain
from dagster_project.checks.quality.sampling import stratified_sample


def _shop(rng, n, *, online=0.2, electronics_price=100.0):
    category = rng.choice(["Grocery", "Toys", "Electronics"], n, p=[0.6, 0.3, 0.1])
    price = np.where(
        category == "Electronics", electronics_price, np.where(category == "Toys", 20.0, 3.0)
    )
    channel = np.where(rng.random(n) < online, "online", "store")
    # online orders never pay cash
    cash = (channel == "store") & (rng.random(n) < 0.4)
    return pl.DataFrame(
        {
            "category": category,
            "region": rng.choice(["North", "South"], n),
            "channel": channel,
            "payment_type": np.where(cash, "cash", "card"),
            "unit_price": price * rng.lognormal(0, 0.1, n),
        }
    )


def test_a_price_shift_in_one_category_is_pinned_to_it():
    rng = np.random.default_rng(0)
    before, after = _shop(rng, 20_000), _shop(rng, 20_000, electronics_price=200.0)
    cause = explain(before, after, "unit_price", True, ["channel", "region", "category"])
    assert (cause.kind, cause.segment, cause.value) == ("concentrated", "category", "Electronics")
    assert "there mean unit_price went from 10" in cause.sentence and "(+100%)" in cause.sentence


def test_a_mix_change_explains_a_dependent_column():
    rng = np.random.default_rng(1)
    before, after = _shop(rng, 20_000), _shop(rng, 20_000, online=0.8)
    cause = explain(before, after, "payment_type", False, ["region", "category", "channel"])
    assert (cause.kind, cause.segment) == ("mix", "channel")
    assert "channel online went from 20% to 80% of rows" in cause.sentence


def test_a_change_everywhere_is_called_spread():
    rng = np.random.default_rng(2)
    before, after = _shop(rng, 20_000), _shop(rng, 20_000, online=0.8)
    cause = explain(before, after, "channel", False, ["region", "category", "channel"])
    assert cause.kind == "spread" and cause.segment is None
    assert cause.sentence.startswith("channel online went from 20% to 80% of rows")


def test_stratified_samples_keep_the_mix_and_are_bounded():
    rng = np.random.default_rng(3)
    shop = _shop(rng, 50_000)
    sample = stratified_sample(shop.lazy(), ["channel", "category"], 5_000)
    assert abs(sample.height - 5_000) <= 12  # one rounding per stratum
    full = shop.group_by("channel", "category").len().with_columns(pl.col("len") / shop.height)
    kept = sample.group_by("channel", "category").len().with_columns(pl.col("len") / sample.height)
    joined = full.join(kept, on=["channel", "category"])
    assert (joined["len"] - joined["len_right"]).abs().max() < 0.002
    again = stratified_sample(shop.lazy(), ["channel", "category"], 5_000)
    assert again.equals(sample)  # deterministic
    assert stratified_sample(shop.lazy(), [], 100_000).height == shop.height
