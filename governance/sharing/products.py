"""Masked, materialized copies of shared products: what the sharing server serves.

For every (product, role) a share exposes, governance builds
`<domain>/<product>_shared_<role>`: the product read through the governed read path as
that role (so the access policy's masks are applied and the read is audited), written
through the lake API with its own derived contract and checks. The server only ever
hands out files of these copies, so personal data is masked before it leaves, whatever
the client does.

Each write records in its Delta commit the columns and masks it was built with
(`mesh.sharing.masks`), so the server can tell, for any version a recipient asks for,
whether today's policy would show its data the same way.
"""

import json
import logging

import polars as pl

from dagster_project import (
    AccessPolicy,
    Contract,
    Decision,
    GovernedReader,
    Lake,
    Product,
    ProductRun,
    Rows,
    masked_document,
)
from governance.sharing.config import SharingConfig, shared_key

log = logging.getLogger(__name__)

# Copies carry data, not the source's pipeline: no landing, no re-synthesis, no second
# anomaly or drift watch (the source product already runs those checks).
DROPPED_CUSTOM = {"landing", "synthetic", "syntheticRows", "writeMode", "anomalyDetection", "drift"}
MASKS_RECORD = "mesh.sharing.masks"  # commit metadata: {column: mask or "clear"}
CLEAR = "clear"


def copy_masks(decision: Decision) -> dict[str, str]:
    """Each column a copy built under this decision holds, with its mask."""
    return {c: decision.masks.get(c) or CLEAR for c in decision.visible}


def readable_under(recorded: dict[str, str], decision: Decision) -> str | None:
    """None when data built with the `recorded` masks is what `decision` would show (each
    column it holds is still visible, masked the same); else why not."""
    today = copy_masks(decision)
    for column, mask in recorded.items():
        if column not in today:
            return f"column {column} is no longer shared"
        if today[column] != mask:
            return f"column {column} is now shared as {today[column]}, not {mask}"
    return None


def write_shared_copy(
    lake: Lake,
    contract: Contract,
    frame: pl.DataFrame,
    decision: Decision,
    run_id: str | None = None,
) -> int:
    """Write a masked copy, its masks recorded in the commit; the rows written."""
    metadata = {MASKS_RECORD: json.dumps(copy_masks(decision), sort_keys=True)}
    if run_id:
        metadata["dagster.run_id"] = run_id
    return lake.write(contract, frame, commit_metadata=metadata).rows_written


def shared_contract(source: Contract, decision: Decision, role: str) -> Contract:
    """The contract of the masked copy: the source's, masked columns retyped or removed."""
    document = masked_document(source, decision)
    key = shared_key(source.key, role)
    name = key.split("/")[1]
    document["id"] = f"{document['id']}:shared:{role}"
    document["name"] = f"{document.get('name') or source.product} (shared with {role})"
    document["schema"][0]["name"] = name
    custom = [
        p for p in document.get("customProperties") or [] if p["property"] not in DROPPED_CUSTOM
    ]
    document["customProperties"] = [
        *custom,
        {"property": "writeMode", "value": "overwrite"},
        {"property": "sharedFrom", "value": source.key},
        {"property": "sharingRole", "value": role},
    ]
    return Contract(document, f"<shared copy {key}>")


def read_for_sharing(reader: GovernedReader, source: Contract, role: str) -> pl.DataFrame:
    """The product as the role may see it: the rows of its shared copy (audited)."""
    principal = f"governance:shared-copy:{role}"
    return reader.read(source.key, role, principal=principal, channel="sharing", contract=source)


def _shared_product(source: Contract, role: str, policy: AccessPolicy) -> Product:
    decision = policy.decide(role, source)
    if not decision.allowed:
        raise ValueError(f"shares.yaml shares {source.key} as {role}: {decision.reason}")
    contract = shared_contract(source, decision, role)

    def build(run: ProductRun) -> Rows:
        frame = read_for_sharing(GovernedReader(run.lake, policy), source, role)
        written = write_shared_copy(run.lake, contract, frame, decision, run.context.run_id)
        metadata = {
            "shared_from": source.key,
            "sharing_role": role,
            "masked_columns": decision.describe_masks() or "none",
        }
        return Rows(frame, metadata, written=True, rows_written=written)

    return Product(
        contract.product,
        build=build,
        inputs=(source.key,),
        contract=contract,
        kinds=("deltasharing",),
        description=f"{source.description} Masked copy shared as {role}.",
    )


def shared_products(
    contracts: list[Contract],
    config: SharingConfig | None = None,
    policy: AccessPolicy | None = None,
) -> list[Product]:
    """One product per (product, role) the shares expose."""
    config = config or SharingConfig.load()
    policy = policy or AccessPolicy.load()
    by_key = {c.key: c for c in contracts}
    # A product no location defines (its domain is not in this workspace, or its
    # contracts are broken) is left out with a warning, so sharing never stops the
    # governance location from loading; the server answers 404 for it.
    missing = sorted({p for p, _ in config.materialized() if p not in by_key})
    if missing:
        log.warning(
            f"shares.yaml shares product(s) no location defines, left out: {', '.join(missing)}"
        )
    return [
        _shared_product(by_key[p], role, policy) for p, role in config.materialized() if p in by_key
    ]
