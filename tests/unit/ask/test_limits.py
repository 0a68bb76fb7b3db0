"""Resource exhaustion: every query ends within its deadline + 2 s and grows its worker
by less than its memory cap, whatever it computes; sizes are refused before any work;
no caller waits for another (a real `mesh serve` on loopback)."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import duckdb
import httpx
import polars as pl
import psutil
import pytest
from typer.testing import CliRunner

from dagster_project.app.cli import app
from dagster_project.ask import Asker, AskError
from dagster_project.ask.limits import (
    CallerBusy,
    Deadline,
    MeshBusy,
    OutOfMemory,
    OutOfTime,
    Slots,
    TooLarge,
)
from dagster_project.ask.worker import configure, warm_up
from dagster_project.core.settings import Limits, SettingsError, get_limits
from dagster_project.metadata.semantics import load_semantic_layer
from tests.servers import mesh_serve
from tests.small_mesh import write_small_mesh

DEADLINE_S = 2.0
MEMORY_MB = 256
SLACK_S = 2.0
# One store row, recursively multiplied: the guard allows no table functions (range).
ROWS = (
    "WITH RECURSIVE r(n) AS (SELECT 1 FROM sales.stores WHERE store_id = 1 "
    "UNION ALL SELECT n + 1 FROM r WHERE n < {n}) "
)
ATTACKS = {
    # issue 17, finding 1: one scalar call DuckDB's interrupt cannot stop
    "levenshtein": "SELECT levenshtein(repeat('a', 160000), repeat('b', 160000)) AS d "
    "FROM sales.stores WHERE store_id = 1",
    # finding 2: 512 MiB in one aggregate
    "string_agg": ROWS.format(n=512) + "SELECT length(string_agg(repeat('x', 1048576), '')) FROM r",
    # one gigabyte string: DuckDB does not count it against memory_limit
    "huge_string": "SELECT length(repeat('x', 1000000000)) AS n FROM sales.stores",
    "many_rows": ROWS.format(n=100_000_000) + "SELECT count(*) FROM r",
    "big_sort": ROWS.format(n=5_000_000) + "SELECT md5(n::VARCHAR) || repeat('y', 300) AS s "
    "FROM r ORDER BY s LIMIT 1",
    # 24^6 rows, each hashed: no shortcut (a bare count(*) of a cross join is computed fast)
    "cross_join": "SELECT max(md5(t0.order_id::VARCHAR || t5.line_number::VARCHAR)) FROM "
    + ", ".join(f"sales.order_lines t{i}" for i in range(6)),
}
STOPPED = (OutOfTime, OutOfMemory)


@pytest.fixture
def limits(monkeypatch) -> Limits:
    monkeypatch.setenv("MESH_QUERY_TIMEOUT_S", str(DEADLINE_S))
    monkeypatch.setenv("MESH_QUERY_MEMORY_MB", str(MEMORY_MB))
    return get_limits()


@pytest.fixture
def asker(lake, demo_contracts, limits) -> Asker:
    write_small_mesh(lake, demo_contracts)
    asker = Asker(lake, load_semantic_layer(), limits=limits, principal="test:attacker")
    warm_up()  # the fork server boots once per process, outside any query's deadline
    return asker


def _stopped(asker: Asker, sql: str) -> tuple[AskError, float]:
    started = time.monotonic()
    with pytest.raises(AskError) as refused:
        asker.run_sql(sql)
    return refused.value, time.monotonic() - started


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_no_query_outruns_its_deadline_or_memory_cap(asker, attack):
    parent = psutil.Process().memory_info().rss
    error, took = _stopped(asker, ATTACKS[attack])
    assert took < DEADLINE_S + SLACK_S, f"{attack} ran {took:.1f} s"
    assert error.peak_mb < MEMORY_MB, f"{attack} grew its worker by {error.peak_mb} MB"
    assert isinstance(error, STOPPED), error
    # The work happened in the worker: the caller's own memory did not take it.
    assert psutil.Process().memory_info().rss - parent < 64 << 20


def test_a_stopped_query_is_still_audited_and_the_next_one_runs(asker, lake):
    error, _ = _stopped(asker, ATTACKS["levenshtein"])
    assert isinstance(error, OutOfTime)
    audit = lake.read("governance/access_audit").filter(pl.col("principal") == "test:attacker")
    assert audit["product"].to_list() == ["sales/stores"] and audit["decision"][0] == "allow"
    assert asker.run_sql("SELECT count(*) AS n FROM sales.stores")[1] == [[4]]


def test_sizes_are_refused_before_any_work(asker):
    ands = "SELECT count(*) FROM sales.stores WHERE " + " AND ".join(["store_id > 0"] * 200_000)
    started = time.monotonic()
    with pytest.raises(TooLarge, match="MESH_MAX_SQL_CHARS"):
        asker.run_sql(ands)  # 2.8 MB: the 1.6 MB body took 31-36 s
    with pytest.raises(TooLarge, match="MESH_MAX_QUESTION_CHARS"):
        asker.ask("revenue by region " * 120_000)  # 2 MiB
    assert time.monotonic() - started < 0.5


def test_the_largest_sql_allowed_is_answered_well_within_the_default_deadline(lake, asker):
    clause = " AND store_id > 0"
    limits = replace(asker.limits, query_timeout_s=10.0)  # the default deadline
    count = (limits.max_sql_chars - 60) // len(clause)
    sql = "SELECT count(*) AS n FROM sales.stores WHERE store_id > 0" + clause * count
    assert len(sql) <= limits.max_sql_chars
    default = Asker(lake, asker.layer, limits=limits)
    started = time.monotonic()
    assert default.run_sql(sql)[1] == [[4]]
    assert time.monotonic() - started < limits.query_timeout_s / 2


@pytest.mark.parametrize(
    "words",
    [
        "revenue by region and category per month for North Porto top 5 stores ",
        "revenue units orders average order value share percentage trend over time ",
        "from 2025-03-01 to 2025-04-01 in march 2025 last 7 days not North except ",
        "qzxv wrtp lmnb ghjk ",
    ],
)
def test_the_longest_question_allowed_parses_in_a_fraction_of_a_second(asker, limits, words):
    """The question is parsed in the caller (before the worker): its cap is its bound."""
    question = (words * 1000)[: limits.max_question_chars]
    parser = asker.parser
    started = time.monotonic()
    parser.parse(question)
    assert time.monotonic() - started < 0.5


def test_duckdb_limits_are_set_and_locked(tmp_path, limits):
    con = duckdb.connect()
    configure(con, limits, str(tmp_path), memory_mb=100)
    settings = dict(
        con.sql(
            "SELECT name, value FROM duckdb_settings() WHERE name IN "
            "('memory_limit', 'threads', 'max_temp_directory_size', 'enable_external_access')"
        ).fetchall()
    )
    assert settings["threads"] == str(limits.query_threads)
    assert settings["memory_limit"].startswith("95.3 MiB")  # 100 MB
    assert settings["max_temp_directory_size"].startswith("976.5 MiB")  # 1024 MB
    assert settings["enable_external_access"] == "false"
    for change in ("SET memory_limit = '64GB'", "SET threads = 64", "SET temp_directory = '/'"):
        with pytest.raises(duckdb.Error, match="lock"):
            con.execute(change)


def test_slots_bound_each_caller_and_the_process():
    slots = Slots(total=2, per_caller=1)
    with slots.hold("a", Deadline.start(1)):
        with pytest.raises(CallerBusy), slots.hold("a", Deadline.start(1)):
            pass
        with slots.hold("b", Deadline.start(1)):
            started = time.monotonic()
            with pytest.raises(MeshBusy), slots.hold("c", Deadline.start(0.2)):
                pass
            assert time.monotonic() - started < 1
    with slots.hold("a", Deadline.start(1)), slots.hold("c", Deadline.start(1)):
        pass  # everything was given back


def test_mesh_ask_sql_and_chat_run_under_the_same_limits(asker, limits):
    runner = CliRunner()
    started = time.monotonic()
    fast = runner.invoke(app, ["ask", "--sql", "SELECT count(*) AS n FROM sales.stores"])
    assert fast.exit_code == 0, fast.output
    set_up = time.monotonic() - started  # the command's own start: layer, policy, worker
    started = time.monotonic()
    result = runner.invoke(app, ["ask", "--sql", ATTACKS["levenshtein"]])
    assert result.exit_code == 1 and "longer than 2 s" in result.output
    assert time.monotonic() - started < set_up + DEADLINE_S + SLACK_S
    chat = runner.invoke(app, ["chat"], input="total revenue " * 200 + "\nquit\n")
    assert chat.exit_code == 0 and "MESH_MAX_QUESTION_CHARS" in chat.output


def test_one_slow_caller_never_delays_another(lake, demo_contracts, tmp_path, monkeypatch):
    """Two callers of a real server at once: the fast one is answered while the slow one
    runs, and the slow one is stopped at its deadline."""
    write_small_mesh(lake, demo_contracts)
    monkeypatch.setenv("MESH_QUERY_TIMEOUT_S", "4")
    monkeypatch.setenv("MESH_QUERY_MEMORY_MB", str(MEMORY_MB))
    with mesh_serve(tmp_path) as base:
        fast = {"sql": "SELECT count(*) AS n FROM sales.stores"}
        assert httpx.post(f"{base}/api/ask", json=fast, timeout=30).status_code == 200
        slow_started = threading.Event()

        def slow() -> tuple[int, float]:
            started = time.monotonic()
            slow_started.set()
            response = httpx.post(
                f"{base}/api/ask", json={"sql": ATTACKS["levenshtein"]}, timeout=30
            )
            return response.status_code, time.monotonic() - started

        with ThreadPoolExecutor(2) as pool:
            slow_call = pool.submit(slow)
            slow_started.wait()
            time.sleep(0.5)  # the slow query is running in its worker
            started = time.monotonic()
            answered = httpx.post(f"{base}/api/ask", json=fast, timeout=30)
            fast_took = time.monotonic() - started
            slow_status, slow_took = slow_call.result()
        assert answered.status_code == 200 and answered.json()["rows"] == [[4]]
        assert fast_took < 1.5, f"the fast caller waited {fast_took:.1f} s"
        assert not slow_call.exception() and slow_status == 400
        assert 4 <= slow_took < 4 + SLACK_S
        assert fast_took < slow_took


def test_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("MESH_QUERY_MEMORY_MB", "300")
    monkeypatch.setenv("MESH_MAX_BODY_BYTES", "1000")
    limits = get_limits()
    assert limits.query_memory_mb == 300 and limits.max_body_bytes == 1000
    monkeypatch.setenv("MESH_QUERY_TIMEOUT_S", "soon")
    with pytest.raises(SettingsError, match="MESH_QUERY_TIMEOUT_S='soon' is not a positive number"):
        get_limits()


def test_a_hung_model_endpoint_cannot_hold_a_question_past_its_deadline(
    lake, demo_contracts, limits, monkeypatch
):
    from tests.openai_server import fake_openai

    write_small_mesh(lake, demo_contracts)
    with fake_openai() as fake:
        fake.chat = lambda request: time.sleep(30) or "{}"  # answers long after the deadline
        monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        monkeypatch.setenv("MESH_LLM_TIMEOUT", "60")  # the client alone would wait a minute
        asker = Asker(lake, load_semantic_layer(), provider="openai", limits=limits)
        started = time.monotonic()
        answer = asker.ask("How many stores are there?")
        took = time.monotonic() - started
        asked = fake.bodies("/chat/completions")
    assert asked, "the model was not asked"
    assert took < DEADLINE_S + SLACK_S, f"the question took {took:.1f} s"
    # The interpreter's reading answers in the time the model left.
    assert answer.status == "answered" and "no answer within" in answer.provider
    assert answer.rows == [[4]]


def _from(address: str) -> httpx.Client:
    """A client whose requests come from this loopback address (all of 127/8 is local)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def test_each_anonymous_address_is_its_own_caller_under_a_cap_for_all(
    lake, demo_contracts, tmp_path, monkeypatch
):
    write_small_mesh(lake, demo_contracts)
    monkeypatch.setenv("MESH_QUERY_TIMEOUT_S", "4")
    monkeypatch.setenv("MESH_QUERY_MEMORY_MB", str(MEMORY_MB))
    monkeypatch.setenv("MESH_QUERY_WORKERS_PER_CALLER", "1")
    monkeypatch.setenv("MESH_QUERY_WORKERS_ANONYMOUS", "2")
    slow = {"sql": ATTACKS["levenshtein"]}
    with mesh_serve(tmp_path) as base, ThreadPoolExecutor(2) as pool:
        url = f"{base}/api/ask"
        running = [pool.submit(_from(a).post, url, json=slow) for a in ("127.0.0.2", "127.0.0.3")]
        time.sleep(1.0)  # both run in their workers
        again = _from("127.0.0.2").post(url, json=slow)  # the same address: its one slot
        third = _from("127.0.0.4").post(url, json=slow)  # a new address: the cap for all
        statuses = [call.result().status_code for call in running]
    # Two addresses ran at once (one shared principal allowed one); both were stopped.
    assert statuses == [400, 400]
    assert again.status_code == 429 and "api:anonymous@127.0.0.2" in again.text
    assert third.status_code == 429 and "MESH_QUERY_WORKERS_ANONYMOUS" in third.text
    audit = lake.read("governance/access_audit")
    assert {"api:anonymous@127.0.0.2", "api:anonymous@127.0.0.3"} <= set(audit["principal"])


def test_time_spent_waiting_on_the_mesh_is_given_back_to_the_deadline():
    deadline = Deadline.start(2.0)
    later = deadline.extended(1.5)
    assert later.ends == deadline.ends + 1.5 and later.seconds == 2.0
