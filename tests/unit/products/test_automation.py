"""Derived products' automation: an unpartitioned product waits for its daily inputs."""

import dagster as dg

from dagster_project.products.builder import default_automation
from dagster_project.products.product import Product

DAYS = dg.DailyPartitionsDefinition(start_date="2025-01-01", end_date="2025-01-03")
DERIVED = Product("derived", build=lambda run: None)


@dg.asset(partitions_def=DAYS)
def lines() -> None:
    """A landed daily product (no automation: a sensor loads it)."""


@dg.asset(partitions_def=DAYS, deps=[lines], automation_condition=default_automation(DERIVED, True))
def daily() -> None:
    """A daily product derived from the landed one."""


@dg.asset(deps=[lines, daily], automation_condition=default_automation(DERIVED, False))
def listing() -> None:
    """An unpartitioned product over both (like the governance catalog)."""


ASSETS = [lines, daily, listing]


def test_unpartitioned_product_waits_for_the_daily_run_it_depends_on() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.evaluate_automation_conditions(defs=ASSETS, instance=instance)
        dg.materialize([lines], instance=instance, partition_key="2025-01-01")
        result = dg.evaluate_automation_conditions(
            defs=ASSETS, instance=instance, cursor=result.cursor
        )
        # daily is requested now; the listing would read its previous state: it waits.
        assert result.get_num_requested(daily.key) == 1
        assert result.get_num_requested(listing.key) == 0
        dg.materialize([daily], instance=instance, partition_key="2025-01-01")
        result = dg.evaluate_automation_conditions(
            defs=ASSETS, instance=instance, cursor=result.cursor
        )
        assert result.get_num_requested(listing.key) == 1
        assert result.get_num_requested(daily.key) == 0


def test_unpartitioned_product_still_refreshes_on_an_input_alone() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.evaluate_automation_conditions(defs=[daily, listing], instance=instance)
        dg.materialize([daily], instance=instance, partition_key="2025-01-02")
        result = dg.evaluate_automation_conditions(
            defs=[daily, listing], instance=instance, cursor=result.cursor
        )
        assert result.get_num_requested(listing.key) == 1


def test_unpartitioned_product_does_not_wait_for_an_input_built_in_the_same_run() -> None:
    """A landing run that also built the derived day: nothing is about to refresh."""
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.evaluate_automation_conditions(defs=ASSETS, instance=instance)
        dg.materialize([lines, daily], instance=instance, partition_key="2025-01-01")
        result = dg.evaluate_automation_conditions(
            defs=ASSETS, instance=instance, cursor=result.cursor
        )
        assert result.get_num_requested(daily.key) == 0  # no second run of the day
        assert result.get_num_requested(listing.key) == 1  # at once, not a tick later


CHECK_PASSES = {"value": True}


@dg.asset
def sideline() -> None:
    """An input of another domain: never built yet (nothing landed there), or built."""


@dg.asset_check(asset=sideline, blocking=True)
def sideline_valid() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=CHECK_PASSES["value"])


@dg.asset(deps=[daily, sideline], automation_condition=default_automation(DERIVED, False))
def overview() -> None:
    """An unpartitioned product over both (the catalog over every domain)."""


def _overview_after_a_new_day(instance: dg.DagsterInstance) -> int:
    defs = [lines, daily, sideline, sideline_valid, overview]
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance)
    dg.materialize([daily], instance=instance, partition_key="2025-01-02")
    result = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=result.cursor)
    return result.get_num_requested(overview.key)


def test_an_input_never_built_does_not_hold_an_unpartitioned_product_back() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        assert _overview_after_a_new_day(instance) == 1


def test_an_input_that_failed_its_blocking_check_still_holds_it_back() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        CHECK_PASSES["value"] = False
        try:
            dg.materialize([sideline, sideline_valid], instance=instance, raise_on_error=False)
        finally:
            CHECK_PASSES["value"] = True
        assert _overview_after_a_new_day(instance) == 0
