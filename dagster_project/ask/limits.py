"""What a query may cost: its deadline, the size of what a caller sends, and how many
queries run at once (per process and per caller). The worker process that enforces
time and memory is `dagster_project.ask.worker`."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from dagster_project.core.settings import Limits


class AskError(ValueError):
    """A question or SQL the mesh refuses to run; `status` is its HTTP status."""

    status = 400


class TooLarge(AskError):
    status = 413


class OutOfTime(AskError):
    """The query ran past its deadline and was stopped."""


class OutOfMemory(AskError):
    """The query needed more memory than its cap and was stopped."""


class CallerBusy(AskError):
    status = 429


class MeshBusy(AskError):
    status = 503


@dataclass(frozen=True)
class Deadline:
    """A point in (monotonic) time by which the work must be over."""

    seconds: float
    ends: float

    @classmethod
    def start(cls, seconds: float) -> Deadline:
        return cls(seconds, time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.ends - time.monotonic()

    def extended(self, seconds: float) -> Deadline:
        """The same deadline `seconds` later (time the work spent waiting on the mesh)."""
        return replace(self, ends=self.ends + seconds)

    def check(self) -> None:
        if self.remaining() <= 0:
            raise OutOfTime(f"the query ran longer than {self.seconds:g} s and was stopped")


def check_size(what: str, text: str, limit: int, setting: str | None = None) -> None:
    """Refuse text longer than `limit` characters before any work is done on it."""
    if len(text) > limit:
        where = f" ({setting})" if setting else ""
        raise TooLarge(f"the {what} has {len(text):,} characters; the limit is {limit:,}{where}")


ANONYMOUS = "api:anonymous"  # the principal of callers without a key: `api:anonymous@<address>`


class Slots:
    """Queries running at once: at most `total` in the process, `per_caller` for one
    principal, so one caller cannot take every worker, and `anonymous` for all callers
    without a key together (each address is its own principal). Nothing is held while
    waiting."""

    def __init__(self, total: int, per_caller: int, anonymous: int | None = None):
        self.total, self.per_caller = total, per_caller
        self.anonymous = anonymous if anonymous is not None else per_caller
        self._free = threading.BoundedSemaphore(total)
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}

    @contextmanager
    def hold(self, caller: str, deadline: Deadline) -> Iterator[None]:
        counted = [caller] + [ANONYMOUS] * caller.startswith(ANONYMOUS + "@")
        with self._lock:
            if self._running.get(caller, 0) >= self.per_caller:
                raise CallerBusy(
                    f"{caller} already runs {self.per_caller} queries; wait for one to finish"
                )
            if ANONYMOUS in counted[1:] and self._running.get(ANONYMOUS, 0) >= self.anonymous:
                raise CallerBusy(
                    f"callers without an API key already run {self.anonymous} queries "
                    "(MESH_QUERY_WORKERS_ANONYMOUS); wait, or use a key"
                )
            for name in counted:
                self._running[name] = self._running.get(name, 0) + 1
        try:
            if not self._free.acquire(timeout=max(0.0, deadline.remaining())):
                raise MeshBusy(f"all {self.total} query workers stayed busy; try again shortly")
            try:
                yield
            finally:
                self._free.release()
        finally:
            with self._lock:
                for name in counted:
                    self._running[name] -= 1
                    if not self._running[name]:
                        del self._running[name]


_slots: dict[tuple[int, int, int], Slots] = {}
_slots_lock = threading.Lock()


def slots_for(limits: Limits) -> Slots:
    """The process's slots for these limits (one set per configuration)."""
    key = (limits.query_workers, limits.query_workers_per_caller, limits.query_workers_anonymous)
    with _slots_lock:
        if key not in _slots:
            _slots[key] = Slots(*key)
        return _slots[key]
