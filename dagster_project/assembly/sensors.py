"""A cursor-based sensor per domain: new landing files → runs for exactly those files."""

import hashlib
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime

import dagster as dg

from dagster_project.core.contracts import Contract
from dagster_project.core.settings import PARTITION_START, MeshSettings
from dagster_project.lake.landing import (
    LandingError,
    LandingFile,
    already_loaded,
    landing_files,
    load_record,
    pending_files,
    quarantine,
    read_landing_file,
    unsettled,
)
from dagster_project.lake.resource import MeshResource
from dagster_project.products.product import asset_key, is_partitioned


def landing_sensor(
    domain: str,
    contracts: list[Contract],
    starts: Mapping[str, date] | None = None,
    *,
    minimum_interval_seconds: int = 30,
    followers: Mapping[str, Sequence[str]] | None = None,
) -> dg.SensorDefinition:
    """Watch `MESH_HOME/landing/<domain>/`: validate each new file, quarantine the bad
    ones with their reason, and request one run per product and day that got new files.

    A file is judged once complete (README, "Landing files") and requested once per size
    and mtime (the cursor, which files gone from the folder leave). A file whose rows
    reference a product with landed but unloaded files waits for those, so integrity
    checks do not fail on a race between runs. `starts`: each daily product's first day;
    a file before it is quarantined when the contract declares that start, and waits for
    the location to be reloaded otherwise. A file whose run ended without loading
    it (failed, canceled, or killed and failed by run monitoring) is asked for again, up
    to MAX_ATTEMPTS times per version of the file. `followers`: for a product, the
    location's derived products its run also materializes (after it, the same day):
    one run instead of a run and an automation tick more."""
    starts = dict(starts or {})
    followers = {k: list(v) for k, v in (followers or {}).items()}
    selected = {c.key for c in contracts} | {f for v in followers.values() for f in v}

    @dg.sensor(
        name=f"{domain}_landing_sensor",
        description=f"Loads new files from landing/{domain}/ into its products",
        asset_selection=[asset_key(k) for k in sorted(selected)],
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: dg.SensorEvaluationContext, mesh: MeshResource) -> dg.SensorResult:
        seen, observed, pending = _read_cursor(context.cursor)
        requests, events, present = [], [], set()
        settings = mesh.settings  # one filesystem for the whole tick
        for contract in contracts:
            files = landing_files(settings, contract)
            present.update(f.uri for f in files)
            new = [
                f
                for f in files
                if seen.get(f.uri) != f.signature and not already_loaded(settings, contract, f)
            ]
            new = _complete(settings, contract, new, observed)
            good = []
            first = starts.get(contract.key, PARTITION_START)
            for file in new:
                if _before_loaded_partitions(contract, file, first):
                    context.log.warning(
                        f"{file.name} ({contract.key}) is older than the partitions this "
                        f"location was loaded with (from {first}); reload the location"
                    )
                    continue
                reason = _rejection(settings, file, contract, first)
                if reason is None:
                    good.append(file)
                    continue
                target = quarantine(settings, contract, file, reason)
                present.discard(file.uri)
                context.log.warning(f"quarantined {file.name} ({contract.key}): {reason}")
                events.append(
                    dg.AssetObservation(
                        asset_key=asset_key(contract.key),
                        metadata={
                            "quarantined_file": file.name,
                            "reason": reason,
                            "quarantine_uri": dg.MetadataValue.path(target),
                        },
                    )
                )
            ready = []
            for file in good:
                waiting = _waiting_for(settings, contract, file)
                if waiting:  # not marked seen: requested on a later tick
                    context.log.info(f"{file.name} ({contract.key}) waits for {waiting} to load")
                else:
                    ready.append(file)
            also = followers.get(contract.key, [])
            requests.extend(_requested(contract, ready, pending, also))
            requests.extend(
                _asked_again(context.instance, settings, contract, files, pending, also)
            )
            seen.update({f.uri: f.signature for f in ready})
        cursor = _cursor(seen, observed, present, pending)
        return dg.SensorResult(run_requests=requests, cursor=cursor, asset_events=events)

    return _sensor


def _read_cursor(cursor: str | None) -> tuple[dict[str, str], dict[str, str], dict[str, list]]:
    """(requested, observed, pending): uri → signature of the files requested, and of the
    files seen on the last tick but not yet judged complete; uri → [signature, run key,
    attempt] of the requested files not known to be loaded yet."""
    state = json.loads(cursor) if cursor else {}
    if "requested" not in state:  # a cursor of before stability: only requested files
        return state, {}, {}
    return state["requested"], state.get("observed", {}), state.get("pending", {})


def _cursor(
    seen: dict[str, str], observed: dict[str, str], present: set[str], pending: dict[str, list]
) -> str:
    """The next cursor, bounded by the folder: files gone leave it."""
    state = {
        "requested": {u: s for u, s in seen.items() if u in present},
        # A file requested before and changed since (a correction) is watched anew.
        "observed": {u: s for u, s in observed.items() if u in present and seen.get(u) != s},
        "pending": {u: p for u, p in pending.items() if u in present},
    }
    return json.dumps(state, sort_keys=True)


RUN_KEY_TAG = "dagster/run_key"  # the tag Dagster gives a run of a sensor's run request
MAX_ATTEMPTS = 3  # runs asked for one version of a file (a failing transform stops there)
_ENDED = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


def _requested(
    contract: Contract,
    files: list[LandingFile],
    pending: dict[str, list],
    also: Sequence[str] = (),
    attempt: int = 1,
) -> list[dg.RunRequest]:
    """The runs for `files` (and the products in `also`), each file remembered as pending
    with its run key."""
    requests = []
    for request, group in _run_requests(contract, files, attempt, also):
        pending.update({f.uri: [f.signature, request.run_key, attempt] for f in group})
        requests.append(request)
    return requests


def _asked_again(
    instance: dg.DagsterInstance,
    settings: MeshSettings,
    contract: Contract,
    files: list[LandingFile],
    pending: dict[str, list],
    also: Sequence[str] = (),
) -> list[dg.RunRequest]:
    """Runs for the pending files whose every run ended without loading them: a run
    killed mid-write converges with no operator. A loaded or changed file stops pending."""
    waiting = []
    for file in (f for f in files if f.uri in pending):
        signature = pending[file.uri][0]
        loaded = load_record(settings, contract, file.name).get("signature") == file.signature
        if signature != file.signature or loaded:
            del pending[file.uri]
        else:
            waiting.append(file)
    if not waiting:
        return []
    keys = sorted({pending[f.uri][1] for f in waiting})
    statuses: dict[str, set] = defaultdict(set)
    for run in instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: keys})):
        statuses[run.tags[RUN_KEY_TAG]].add(run.status)
    ended = [
        f
        for f in waiting
        if statuses.get(key := pending[f.uri][1])
        and statuses[key] <= _ENDED
        and pending[f.uri][2] < MAX_ATTEMPTS
    ]
    if not ended:
        return []
    attempt = 1 + max(pending[f.uri][2] for f in ended)
    return _requested(contract, ended, pending, also, attempt)


def _complete(
    settings: MeshSettings,
    contract: Contract,
    files: list[LandingFile],
    observed: dict[str, str],
) -> list[LandingFile]:
    """The files complete enough to judge; the others wait for a later tick. With
    `ticks`, a file must also have had the same size and mtime on the previous tick
    (`observed`, updated here with what this tick saw)."""
    waiting = unsettled(settings, contract, files)
    ready = []
    for file in files:
        steady = observed.get(file.uri) == file.signature
        observed[file.uri] = file.signature
        if file.name in waiting or (settings.landing_stable == "ticks" and not steady):
            continue
        ready.append(file)
    return ready


def _before_loaded_partitions(contract: Contract, file: LandingFile, first: date) -> bool:
    """A day before a start taken from the data: it landed after the location loaded."""
    undeclared = contract.partition_start is None and is_partitioned(contract)
    return undeclared and file.day is not None and file.day < first


def _rejection(
    settings: MeshSettings, file: LandingFile, contract: Contract, first: date
) -> str | None:
    if is_partitioned(contract):
        if file.day is None:
            return "a daily product's file name must start with its day (YYYY-MM-DD)"
        last = datetime.now(UTC).date()
        if file.day < first:
            return (
                f"day {file.day} is before partitionStart {first} of the contract; "
                "lower partitionStart to load it"
            )
        if file.day > last:
            return f"day {file.day} is after the product's last partition ({last}, today)"
    try:
        read_landing_file(settings, file, contract)
    except LandingError as exc:
        return str(exc)
    return None


def _waiting_for(settings: MeshSettings, contract: Contract, file: LandingFile) -> list[str]:
    """Referenced products that still have landed, unloaded files up to this file's day."""
    targets = {k.target for k in contract.foreign_keys} - {contract.key}
    return sorted(t for t in targets if pending_files(settings, t, file.day))


def _run_requests(
    contract: Contract, files: list[LandingFile], attempt: int = 1, also: Sequence[str] = ()
) -> list[tuple[dg.RunRequest, list[LandingFile]]]:
    """One run per day (or one for an unpartitioned product) and the files it loads; the
    products in `also` follow in the same run."""
    again = f":attempt{attempt}" if attempt > 1 else ""
    groups: dict[str | None, list[LandingFile]] = defaultdict(list)
    for file in files:
        groups[file.day.isoformat() if is_partitioned(contract) else None].append(file)
    return [
        (
            dg.RunRequest(
                run_key=f"{contract.key}:{day or 'all'}:{_digest(group)}{again}",
                asset_selection=[asset_key(k) for k in [contract.key, *also]],
                partition_key=day,
                tags={"mesh/landing_files": ",".join(f.name for f in group)[:1000]},
            ),
            group,
        )
        for day, group in sorted(groups.items(), key=lambda kv: kv[0] or "")
    ]


def _digest(files: list[LandingFile]) -> str:
    text = "|".join(f"{f.uri}@{f.signature}" for f in files)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
