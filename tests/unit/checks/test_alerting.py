import dagster as dg
import pytest

from dagster_project.checks.alerting import check_alert_sensor
from dagster_project.checks.quality.alerts import read_alerts
from dagster_project.lake.resource import MeshResource


@dg.asset(key=["sales", "widgets"])
def widgets() -> int:
    return 3


@dg.asset_check(asset=widgets, blocking=False)
def enough_widgets() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, description="Only 3 widgets, expected at least 10")


@dg.asset_check(asset=widgets)
def widgets_counted() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


@dg.asset_check(asset=widgets, blocking=False)
def widgets_drift() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        description="Widget sizes drifted",
        metadata={"alert_file": "/already/sent.jsonl"},  # alerted while running
    )


@dg.asset_check(asset=widgets, blocking=False)
def widgets_fresh() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=False, severity=dg.AssetCheckSeverity.WARN, description="Widgets are 3 days old."
    )


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("MESH_HOME", str(tmp_path))
    monkeypatch.delenv("MESH_ALERT_WEBHOOK_URL", raising=False)
    return tmp_path


SENSOR = check_alert_sensor("sales_check_alerts")
DEFS = dg.Definitions(assets=[widgets], asset_checks=[enough_widgets, widgets_counted])


def _tick(instance: dg.DagsterInstance, cursor: str | None = None):
    context = dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"mesh": MeshResource()}, definitions=DEFS
    )
    return SENSOR(context)


def test_one_plain_alert_per_failed_check_and_none_on_the_next_tick(home):
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [widgets, enough_widgets, widgets_counted], instance=instance, raise_on_error=False
        )
        assert result.success  # a non-blocking check does not fail the run
        first = _tick(instance)
        alerts = read_alerts(MeshResource().settings)
        assert len(alerts) == 1
        assert alerts[0]["product"] == "sales/widgets"
        assert alerts[0]["severity"] == "ERROR"
        assert alerts[0]["text"] == (
            "The quality check 'enough_widgets' on sales/widgets failed: "
            "Only 3 widgets, expected at least 10."
        )
        assert first.cursor
        second = _tick(instance, first.cursor)
        assert isinstance(second, dg.SkipReason)
        assert len(read_alerts(MeshResource().settings)) == 1


def test_warnings_read_as_warnings_and_checks_that_alerted_themselves_are_skipped(home):
    checks = [widgets_drift, widgets_fresh]
    defs = dg.Definitions(assets=[widgets], asset_checks=checks)
    with dg.instance_for_test() as instance:
        assert dg.materialize([widgets, *checks], instance=instance).success
        context = dg.build_sensor_context(
            instance=instance, resources={"mesh": MeshResource()}, definitions=defs
        )
        SENSOR(context)
        alerts = read_alerts(MeshResource().settings)
        assert [(a["check"], a["severity"]) for a in alerts] == [("widgets_fresh", "WARN")]
        assert alerts[0]["text"] == (
            "The quality check 'widgets_fresh' on sales/widgets raised a warning: "
            "Widgets are 3 days old."
        )


def test_nothing_to_alert_is_a_skip(home):
    with dg.instance_for_test() as instance:
        assert isinstance(_tick(instance), dg.SkipReason)
        assert read_alerts(MeshResource().settings) == []


DAYS = dg.DailyPartitionsDefinition(start_date="2025-03-01", end_date="2025-03-04")


@dg.asset(
    key=["sales", "days"], partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run()
)
def days() -> None:
    return None


@dg.asset_check(asset=days, blocking=False)
def days_complete() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, description="Two days are missing")


def test_a_partition_range_run_alerts_once_and_does_not_hold_the_cursor(home):
    defs = dg.Definitions(assets=[days], asset_checks=[days_complete])
    with dg.instance_for_test() as instance:
        job = defs.resolve_implicit_global_asset_job_def()
        tags = {"dagster/asset_partition_range_start": "2025-03-01"}
        tags["dagster/asset_partition_range_end"] = "2025-03-03"
        assert job.execute_in_process(instance=instance, tags=tags).success
        context = dg.build_sensor_context(
            instance=instance, resources={"mesh": MeshResource()}, definitions=defs
        )
        result = SENSOR(context)
        assert [a["check"] for a in read_alerts(MeshResource().settings)] == ["days_complete"]
        # The partitions the check was planned for but not evaluated on do not hold it.
        history = instance.event_log_storage.get_asset_check_execution_history(
            days_complete.check_key, limit=10
        )
        assert int(result.cursor) == max(r.id for r in history)
