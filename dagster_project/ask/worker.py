"""Every query of a person runs in a disposable worker process that is killed at its
deadline or as soon as it outgrows its memory cap.

Why a process (measured, issue 17): DuckDB honours `interrupt()` only between pieces of
work, so one long scalar call (`levenshtein` over two 160k-character strings) ran 37 s
past an interrupt at 2 s; parsing and planning 1.6 MB of SQL (200k ANDs) took 15 s and
2.8 GB whatever `memory_limit` said. Killing the process is the one limit such work
cannot outrun. Inside it DuckDB's own limits (memory, threads, temp space; the
configuration locked) still make most runaway queries fail cleanly first.

The worker is forked from a fork server that imported the mesh once (about 2 s, on the
first query of a process; `warm_up` does it ahead). A spare worker starts polars,
delta-rs and its DuckDB connection before the next query comes, and a job carries only
the contracts its SQL names, so a query pays a few ms to start. The worker guards the
SQL, reads each product through the governed read path (PII masked before DuckDB sees a
row), runs the SQL and sends the rows back. Its audit
records go to the caller as they are made, so a query killed later is still audited;
the worker writes nothing.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from typing import Any

import duckdb
import polars as pl
import psutil
from deltalake import DeltaTable
from deltalake.exceptions import TableNotFoundError

from dagster_project.access.policy import AccessDenied, AccessPolicy, AuditRecord, GovernedReader
from dagster_project.ask.guard import GuardError, guard_sql
from dagster_project.ask.limits import AskError, Deadline, OutOfMemory, OutOfTime
from dagster_project.ask.semantic_sql import IN_MEMORY, DuckDBConnections
from dagster_project.core.contracts import Contract
from dagster_project.core.settings import Limits, MeshSettings
from dagster_project.lake.storage import Lake

POLL_S = 0.01  # how often the caller looks at the worker's time and memory
# The worker is killed at this share of its cap: what it allocates between two looks
# (faulting in fresh pages runs at 1-2 GB/s, 10-20 MB a look) stays under the cap.
KILL_AT = 0.9
MIN_DUCKDB_MB = 16
# What the fork server imports once; `warm_up(preload=...)` adds to it before it starts.
_PRELOAD = ["dagster_project.ask.worker_warm"]
_context_lock = threading.Lock()
_warm = False


@dataclass(frozen=True)
class SqlJob:
    """Everything a worker needs to answer one SQL query as one role."""

    sql: str
    products: tuple[str, ...]  # every product the SQL may read
    contracts: dict[str, Contract]  # theirs, of those the SQL names (what a job carries)
    role: str
    principal: str | None
    home: str
    storage_options: dict[str, str]
    policy: AccessPolicy
    mask_key: bytes
    row_limit: int
    limits: Limits
    environ: dict[str, str] = field(default_factory=dict)
    temp_dir: str = ""
    # Where the worker's DuckDB connection comes from (a DuckDBResource in a server).
    connections: DuckDBConnections = IN_MEMORY


@dataclass(frozen=True)
class SqlResult:
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    peak_mb: float  # the worker's memory growth while it ran


def _context() -> multiprocessing.context.BaseContext:
    """The standard library's fork server: workers fork from a clean process that
    imported this module, never from the caller (whose threads may hold locks a child
    would inherit). Each worker re-imports the caller's main script as `__mp_main__`
    (multiprocessing's rule); a spare is started ahead, so no query waits for that."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    return context


def warm_up(*, wait: bool = True, preload: Sequence[str] = ()) -> None:
    """Start the fork server and let it import the mesh now (about 2 s, once per
    process), so no query's deadline pays for it; `wait=False` starts it in the
    background (a later `warm_up()` waits for it). `preload`: modules of what the jobs
    carry (a server's DuckDBResource: dagster_duckdb), imported once by the fork server
    rather than by every worker, if it has not started yet."""
    global _warm
    if not wait:
        threading.Thread(target=warm_up, kwargs={"preload": preload}, daemon=True).start()
        return
    with _context_lock:
        if _warm:
            return
        _PRELOAD.extend(m for m in preload if m not in _PRELOAD)
        _context()
        probe = _context().Process(target=_ready, daemon=True)
        probe.start()
        probe.join()
        _warm = True


def _ready() -> None:
    """A worker that only proves the fork server answers."""


@dataclass
class _Started:
    """A worker waiting for its job: `jobs` carries the job to it, `results` back."""

    process: multiprocessing.process.BaseProcess
    jobs: Connection
    results: Connection
    connections: DuckDBConnections  # the connection it opened ahead comes from these


_spares: dict[int, _Started] = {}  # one started worker per thread count, for the next query
_spares_lock = threading.Lock()


def _start(threads: int, connections: DuckDBConnections) -> _Started:
    jobs_out, jobs_in = _context().Pipe(duplex=False)
    results_out, results_in = _context().Pipe(duplex=False)
    process = _context().Process(
        target=_serve, args=(jobs_out, results_in, threads, connections), daemon=True
    )
    process.start()
    jobs_out.close()
    results_in.close()
    return _Started(process, jobs_in, results_out, connections)


def _take(threads: int, connections: DuckDBConnections) -> _Started:
    """A started worker: the spare if there is one (it starts polars and DuckDB and opens
    its connection, ~0.2 s, while no query waits for it), else a new one."""
    with _spares_lock:
        spare = _spares.pop(threads, None)
    if spare is not None and spare.process.is_alive() and spare.connections == connections:
        return spare
    if spare is not None:
        _discard(spare)
    return _start(threads, connections)


def _discard(worker: _Started) -> None:
    worker.process.kill()
    worker.process.join()
    worker.results.close()


def _restock(threads: int, connections: DuckDBConnections) -> None:
    """Start the spare for the next query, as soon as this one took the last: a worker
    re-imports the caller's main script (multiprocessing's rule) and starts polars and
    DuckDB, which the next caller should not wait for."""
    with _spares_lock:
        if threads in _spares:
            return
    fresh = _start(threads, connections)
    with _spares_lock:
        if threads not in _spares:
            _spares[threads] = fresh
            return
    _discard(fresh)


def run(job: SqlJob, deadline: Deadline, audit: Callable[[list[AuditRecord]], None]) -> SqlResult:
    """Answer the job in a worker; raises OutOfTime / OutOfMemory when it is stopped,
    AccessDenied or AskError when it refuses (both with `peak_mb`, the memory the
    worker grew by). `audit` gets the worker's audit records as they are made."""
    booting = time.monotonic()
    # The fork server's boot (once per process) is the mesh's time, not the query's.
    warm_up(preload=connections_modules(job.connections))
    deadline = deadline.extended(time.monotonic() - booting)
    temp_dir = tempfile.mkdtemp(prefix="mesh-query-")
    job = replace(job, environ=dict(os.environ), temp_dir=temp_dir)
    threads = job.limits.query_threads
    worker = _take(threads, job.connections)
    threading.Thread(target=_restock, args=(threads, job.connections), daemon=True).start()
    # Handed over beside the watch: a job larger than the pipe's buffer waits for the
    # worker to read it, and that wait is the query's too.
    threading.Thread(target=_hand_over, args=(worker.jobs, pickle.dumps(job)), daemon=True).start()
    try:
        return _Watch(worker.process, job.limits).until_done(worker.results, deadline, audit)
    finally:
        worker.process.kill()  # done or stopped: nothing in it is worth a clean exit
        # Waiting for its exit and removing its files is not the answer's time.
        threading.Thread(target=_clean_up, args=(worker, temp_dir), daemon=True).start()


def _clean_up(worker: _Started, temp_dir: str) -> None:
    _discard(worker)
    shutil.rmtree(temp_dir, ignore_errors=True)


def named_in(sql: str, contracts: Mapping[str, Contract]) -> dict[str, Contract]:
    """The contracts of the products whose name is a word of the SQL: a worker needs no
    other (unpickling all of them took longer than most queries' own work)."""
    words = set(re.findall(r"\w+", sql.lower()))
    return {key: c for key, c in contracts.items() if key.split("/")[1].lower() in words}


def _hand_over(jobs: Connection, payload: bytes) -> None:
    try:
        jobs.send_bytes(payload)
    except OSError:  # the worker was stopped first
        pass
    finally:
        jobs.close()


class _Watch:
    """The caller's side of one worker: its messages, its clock and its memory."""

    def __init__(self, process: multiprocessing.process.BaseProcess, limits: Limits):
        self.process, self.limits = process, limits
        self.baseline: int | None = None
        self.peak_mb = 0.0

    def until_done(
        self,
        conn: Connection,
        deadline: Deadline,
        audit: Callable[[list[AuditRecord]], None],
    ) -> SqlResult:
        while True:
            left = deadline.remaining()
            if left <= 0:
                self._measure()
                self.process.kill()
                raise self._error(
                    OutOfTime, f"the query ran longer than {deadline.seconds:g} s and was stopped"
                )
            if conn.poll(min(left, POLL_S)):
                try:
                    kind, value = pickle.loads(conn.recv_bytes())
                except EOFError:
                    self.process.join(1)
                    message = f"the query's worker ended (exit code {self.process.exitcode})"
                    raise self._error(AskError, message) from None
                if kind == "started":
                    self.baseline = value
                elif kind == "audit":
                    audit(value)
                elif kind == "result":
                    return value
                else:
                    message, self.peak_mb = value
                    raise self._error(_ERRORS[kind], message)
            if self._measure() > self.limits.query_memory_mb * KILL_AT:
                self.process.kill()
                message = (
                    f"the query grew past {KILL_AT:.0%} of its {self.limits.query_memory_mb} MB "
                    "and was stopped (MESH_QUERY_MEMORY_MB)"
                )
                raise self._error(OutOfMemory, message)

    def _measure(self) -> float:
        """The worker's growth in MB, remembering its peak."""
        if self.baseline is not None:
            grown = (_private_peak(self.process.pid) - self.baseline) / (1 << 20)
            self.peak_mb = max(self.peak_mb, grown)
        return self.peak_mb

    def _error(self, kind: type[Exception], message: str) -> Exception:
        error = kind(message)
        error.peak_mb = round(self.peak_mb, 1)
        return error


_ERRORS: dict[str, type[Exception]] = {
    "denied": AccessDenied,
    "memory": OutOfMemory,
    "refused": AskError,
}


def _private_peak(pid: int) -> int:
    """Bytes of private memory the process holds at most so far: its peak resident size
    (Linux: VmHWM) less the shared library and file pages it maps, which every worker
    shares and which a query does not allocate. Elsewhere its resident size."""
    try:
        with open(f"/proc/{pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
        kib = {k: int(fields[k].split()[0]) for k in ("VmHWM", "RssFile", "RssShmem")}
        return (kib["VmHWM"] - kib["RssFile"] - kib["RssShmem"]) << 10
    except (OSError, KeyError, ValueError):
        pass
    try:
        return psutil.Process(pid).memory_info().rss
    except psutil.Error:
        return 0


# -- inside the worker ---------------------------------------------------------------------
def _send(conn: Connection, kind: str, value: Any) -> None:
    conn.send_bytes(pickle.dumps((kind, value)))


def _serve(
    jobs: Connection, conn: Connection, threads: int, connections: DuckDBConnections
) -> None:
    """A worker's life: start the libraries, open a connection, wait for one job, answer
    it, end."""
    os.environ["POLARS_MAX_THREADS"] = str(threads)  # read when polars starts its pool
    pl.DataFrame({"warm": [1]}).select(pl.col("warm") + 1)
    _start_delta_runtime()
    with ExitStack() as stack:
        try:
            opened = stack.enter_context(connections.get_connection())  # ~10-25 ms
        except Exception:  # the job's own connection will say why, as its refusal
            opened = None
        try:
            job: SqlJob = pickle.loads(jobs.recv_bytes())
        except EOFError:  # the caller went away before a query came
            return
        jobs.close()
        if opened is not None and job.connections == connections:
            job = replace(job, connections=_Opened(opened))
        _answer(job, conn)


def _start_delta_runtime() -> None:
    """delta-rs starts its runtime on the first table it opens (~10 ms): a table that
    does not exist starts it too."""
    with suppress(TableNotFoundError):
        DeltaTable(os.path.join(tempfile.gettempdir(), "mesh-no-table"))


@dataclass(frozen=True)
class _Opened:
    """The connection a worker opened before its job came."""

    con: duckdb.DuckDBPyConnection

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        yield self.con


def _answer(job: SqlJob, conn: Connection) -> None:
    os.environ.clear()
    os.environ.update(job.environ)
    baseline = _private_peak(os.getpid())
    _send(conn, "started", baseline)
    try:
        result = execute(job, lambda records: _send(conn, "audit", list(records)), baseline)
        payload = pickle.dumps(("result", result))
        if len(payload) > job.limits.query_result_mb << 20:
            raise AskError(
                f"the answer is larger than {job.limits.query_result_mb} MB "
                "(MESH_QUERY_RESULT_MB): select fewer or smaller columns"
            )
        conn.send_bytes(payload)
    except Exception as exc:  # the caller shows one line; the worker has no console
        kind, message = _refusal(exc, job.limits)
        grown = (_private_peak(os.getpid()) - baseline) / (1 << 20)
        _send(conn, kind, (message, round(grown, 1)))
    finally:
        conn.close()


def _refusal(exc: Exception, limits: Limits) -> tuple[str, str]:
    """How the caller hears of a failure: a kind (see `_ERRORS`) and one line."""
    if isinstance(exc, AccessDenied):
        return "denied", str(exc)
    if isinstance(exc, duckdb.OutOfMemoryException | MemoryError):
        return "memory", (
            f"the query needed more than {limits.query_memory_mb} MB (MESH_QUERY_MEMORY_MB)"
        )
    if isinstance(exc, AskError | GuardError):
        return "refused", str(exc)
    if isinstance(exc, RecursionError):
        return "refused", "the SQL is nested too deeply"
    if isinstance(exc, duckdb.Error):
        return "refused", str(exc).splitlines()[0]
    return "refused", f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:300]}"


class _ForwardingReader(GovernedReader):
    """A governed reader whose audit records go to the caller instead of the lake."""

    def __init__(self, lake, policy, *, mask_key, forward):
        super().__init__(lake, policy, mask_key=mask_key)
        self.forward = forward

    def audit_many(self, records: Iterable[AuditRecord]) -> None:
        self.forward(records)


def execute(
    job: SqlJob, audit: Callable[[Iterable[AuditRecord]], None], baseline: int
) -> SqlResult:
    """Guard the SQL, register the role's masked view of each product it reads and run
    it under DuckDB's limits (in the worker; `run` calls this)."""
    try:
        products = guard_sql(job.sql, job.products)
    except GuardError as exc:
        raise AskError(str(exc)) from None
    lake = Lake(MeshSettings(home=job.home, storage_options=job.storage_options))
    reader = _ForwardingReader(lake, job.policy, mask_key=job.mask_key, forward=audit)
    with job.connections.get_connection() as con:
        columns, rows = _query(con, reader, job, products, baseline)
    peak = max(0, _private_peak(os.getpid()) - baseline) / (1 << 20)
    truncated = len(rows) > job.row_limit
    return SqlResult(columns, rows[: job.row_limit], truncated, round(peak, 1))


def _query(
    con: duckdb.DuckDBPyConnection,
    reader: GovernedReader,
    job: SqlJob,
    products: list[str],
    baseline: int,
) -> tuple[list[str], list[list[Any]]]:
    try:
        for key in products:
            _register(con, reader, job, key)
        # What the frames took already is not DuckDB's to spend; of the rest it gets
        # most, leaving room for Python (the caller kills the worker near the whole cap).
        used = max(0, _private_peak(os.getpid()) - baseline) >> 20
        budget = max(MIN_DUCKDB_MB, int((job.limits.query_memory_mb - used) * 0.75))
        configure(con, job.limits, job.temp_dir, memory_mb=budget)
        limited = f"SELECT * FROM (\n{job.sql}\n) AS answer LIMIT {job.row_limit + 1}"
        result = con.sql(limited)
        columns = list(result.columns)
        rows = [list(r) for r in result.fetchall()]
    finally:
        con.close()  # DuckDBResource's own close is skipped when the block raises
    return columns, rows


def connections_modules(connections: DuckDBConnections) -> tuple[str, ...]:
    """The module a worker imports to unpickle `connections`: the fork server's to preload."""
    return (type(connections).__module__,)


def configure(
    con: duckdb.DuckDBPyConnection, limits: Limits, temp_dir: str, *, memory_mb: int
) -> None:
    """DuckDB's own limits for one query, then its configuration locked: no setting can
    be changed back, and (behind the guard) no file, URL or extension can be reached."""
    temp = temp_dir.replace("'", "''")
    for setting in (
        f"SET threads = {limits.query_threads}",
        f"SET memory_limit = '{memory_mb}MB'",
        f"SET temp_directory = '{temp}'",
        f"SET max_temp_directory_size = '{limits.query_temp_mb}MB'",
        "SET enable_external_access = false",
        "SET lock_configuration = true",
    ):
        con.execute(setting)


def _register(
    con: duckdb.DuckDBPyConnection, reader: GovernedReader, job: SqlJob, key: str
) -> None:
    domain, name = key.split("/")
    contract = job.contracts.get(key)
    if contract is None:  # the SQL named it in a way the words did not show
        raise AskError(f"{key} is read by a name this query cannot resolve")
    words = set(re.findall(r"\w+", job.sql.lower()))
    used = [c for c in contract.column_names if c.lower() in words or "*" in job.sql]
    frame = reader.scan(
        key, job.role, used or None, principal=job.principal, channel="ask", contract=contract
    ).collect()
    if frame.width == 0:
        raise AskError(f"role {job.role} sees none of the columns it asks of {key}")
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{domain}"')
    con.register(f"__{domain}__{name}", frame.to_arrow())
    con.execute(f'CREATE VIEW "{domain}"."{name}" AS SELECT * FROM "__{domain}__{name}"')
