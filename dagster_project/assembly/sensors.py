"""A cursor-based sensor per domain: new landing files → runs for exactly those files."""

import hashlib
import json
from collections import defaultdict
from datetime import UTC, date, datetime

import dagster as dg

from dagster_project.core.contracts import Contract, parse_reference
from dagster_project.core.settings import MeshSettings
from dagster_project.lake.landing import (
    LandingError,
    LandingFile,
    already_loaded,
    landing_files,
    pending_files,
    quarantine,
    read_landing_file,
)
from dagster_project.lake.resource import MeshResource
from dagster_project.products.builder import DAILY
from dagster_project.products.product import asset_key, is_partitioned


def landing_sensor(
    domain: str, contracts: list[Contract], *, minimum_interval_seconds: int = 30
) -> dg.SensorDefinition:
    """Watch `MESH_HOME/landing/<domain>/`: validate each new file, quarantine the bad
    ones with their reason, and request one run per product and day that got new files.

    The cursor remembers each file's size and modification time, so a file is seen
    once; a file dropped again (new mtime) is loaded again, which changes nothing. Files
    gone from the folder (quarantined, archived) leave the cursor, so it stays as small
    as the folder. A file
    whose rows reference a product with landed but unloaded files (order lines of
    customers who signed up the same day) waits until those are loaded, so referential
    integrity checks do not fail on a race between runs."""

    @dg.sensor(
        name=f"{domain}_landing_sensor",
        description=f"Loads new files from landing/{domain}/ into its products",
        asset_selection=[asset_key(c.key) for c in contracts],
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: dg.SensorEvaluationContext, mesh: MeshResource) -> dg.SensorResult:
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
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
            good = []
            for file in new:
                reason = _rejection(settings, file, contract)
                if reason is None:
                    good.append(file)
                    continue
                target = quarantine(settings, contract, file, reason)
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
            requests.extend(_run_requests(contract, ready))
            seen.update({f.uri: f.signature for f in ready})
        seen = {uri: sig for uri, sig in seen.items() if uri in present}  # bounded by the folder
        return dg.SensorResult(
            run_requests=requests, cursor=json.dumps(seen, sort_keys=True), asset_events=events
        )

    return _sensor


def _rejection(settings: MeshSettings, file: LandingFile, contract: Contract) -> str | None:
    if is_partitioned(contract):
        if file.day is None:
            return "a daily product's file name must start with its day (YYYY-MM-DD)"
        last = datetime.now(UTC).date()
        first = date.fromisoformat(DAILY.start.strftime("%Y-%m-%d"))
        if not first <= file.day <= last:
            return f"day {file.day} is outside the product's partitions ({first} .. {last})"
    try:
        read_landing_file(settings, file, contract)
    except LandingError as exc:
        return str(exc)
    return None


def _waiting_for(settings: MeshSettings, contract: Contract, file: LandingFile) -> list[str]:
    """Referenced products that still have landed, unloaded files up to this file's day."""
    targets = {
        "/".join(parse_reference(ref, contract.domain)[:2])
        for col in contract.columns
        for ref in col.references
    } - {contract.key}
    return sorted(t for t in targets if pending_files(settings, t, file.day))


def _run_requests(contract: Contract, files: list[LandingFile]) -> list[dg.RunRequest]:
    if not files:
        return []
    groups: dict[str | None, list[LandingFile]] = defaultdict(list)
    for file in files:
        groups[file.day.isoformat() if is_partitioned(contract) else None].append(file)
    return [
        dg.RunRequest(
            run_key=f"{contract.key}:{day or 'all'}:{_digest(group)}",
            asset_selection=[asset_key(contract.key)],
            partition_key=day,
            tags={"mesh/landing_files": ",".join(f.name for f in group)[:1000]},
        )
        for day, group in sorted(groups.items(), key=lambda kv: kv[0] or "")
    ]


def _digest(files: list[LandingFile]) -> str:
    text = "|".join(f"{f.uri}@{f.signature}" for f in files)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
