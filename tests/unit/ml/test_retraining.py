import dagster as dg

from dagster_project.ml.retraining import retrain_on_check_warning, weekly_retraining

SALES = dg.AssetKey(["sales", "daily_sales"])
MODEL = dg.AssetKey(["inventory", "demand_model"])
DRIFT = dg.AssetCheckKey(SALES, "drift")


def _sales_with_drift(passed: bool, severity: dg.AssetCheckSeverity) -> dg.AssetsDefinition:
    @dg.asset(key=SALES, check_specs=[dg.AssetCheckSpec("drift", asset=SALES)])
    def daily_sales() -> dg.MaterializeResult:
        check = dg.AssetCheckResult(check_name="drift", passed=passed, severity=severity)
        return dg.MaterializeResult(check_results=[check])

    return daily_sales


def _tick(instance: dg.DagsterInstance, cursor: str | None = None):
    sensor = retrain_on_check_warning("retrain_on_drift", DRIFT, MODEL)
    return sensor(dg.build_sensor_context(instance=instance, cursor=cursor))


def test_without_any_drift_evaluation_the_sensor_skips_and_says_why() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        result = _tick(instance)
    assert isinstance(result, dg.SkipReason)
    assert "no evaluation of sales/daily_sales:drift" in result.skip_message


def test_a_drift_warning_requests_one_retraining_run() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        dg.materialize([_sales_with_drift(True, dg.AssetCheckSeverity.WARN)], instance=instance)
        quiet = _tick(instance)
        assert not quiet.run_requests and "no new warning" in quiet.skip_reason.skip_message

        dg.materialize([_sales_with_drift(False, dg.AssetCheckSeverity.WARN)], instance=instance)
        warned = _tick(instance, quiet.cursor)
        assert [r.asset_selection for r in warned.run_requests] == [[MODEL]]
        assert (
            "sales/daily_sales:drift warned"
            in warned.run_requests[0].tags["meshwork/retrain_reason"]
        )
        again = _tick(instance, warned.cursor)  # the same warning is handled once
        assert not again.run_requests


def test_an_error_severity_failure_is_not_a_drift_warning() -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        dg.materialize([_sales_with_drift(False, dg.AssetCheckSeverity.ERROR)], instance=instance)
        assert not _tick(instance).run_requests


def test_the_weekly_schedule_targets_the_model() -> None:
    schedule = weekly_retraining("weekly", MODEL)
    assert schedule.cron_schedule == "0 3 * * 1"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
