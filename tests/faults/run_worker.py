"""A Dagster run of one product-like asset, for the fault suite to kill.

    python -m tests.faults.run_worker hang|quick
    python -m tests.faults.run_worker land RUN_KEY PRODUCT [DAY]

Runs the job `faults_job` with `dg.execute_job` on the instance in DAGSTER_HOME (the
asset claims a slot of its pool, `mesh/faults/slow`, like every product). `hang` prints
`step started` from inside the step, then waits to be killed; `quick` just finishes.
`land` runs the landing product `shop/PRODUCT` of the contracts in FAULT_CONTRACTS (on
MESH_HOME; partition DAY) as its sensor's run `RUN_KEY`; its Delta write stalls after one
batch, printing `writing`. Also a code location (`defs`) for `dagster-daemon run -f`.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import dagster as dg
import pyarrow as pa

from dagster_project.lake import storage

POOL = "mesh/faults/slow"


@dg.asset(key=["faults", "slow"], pool=POOL)
def slow(context) -> None:
    if context.run.tags.get("fault") == "hang":
        print("step started", flush=True)
        time.sleep(600)


defs = dg.Definitions(
    assets=[slow],
    jobs=[dg.define_asset_job("faults_job", [slow], executor_def=dg.in_process_executor)],
)


def faults_job() -> dg.JobDefinition:
    return defs.resolve_job_def("faults_job")


def shop_job() -> dg.JobDefinition:
    """The landed products `events` and `visits` of shop (contracts in FAULT_CONTRACTS),
    the one in FAULT_PRODUCT as a job."""
    from dagster_project import domain_definitions, landing

    folder, product = Path(os.environ["FAULT_CONTRACTS"]), os.environ["FAULT_PRODUCT"]
    shop = domain_definitions("shop", [landing("events"), landing("visits")], contracts=folder)
    job = dg.define_asset_job("shop_job", [f"shop/{product}"], executor_def=dg.in_process_executor)
    return dg.Definitions.merge(shop, dg.Definitions(jobs=[job])).resolve_job_def("shop_job")


def stalled_batches(table: pa.Table) -> pa.RecordBatchReader:
    """`storage.in_batches` that streams one batch, says `writing`, and waits there (for
    a line on stdin that never comes): a kill lands inside the write, whatever the load."""

    def batches():
        chunks = table.to_batches(max_chunksize=50)
        yield chunks[0]
        print("writing", flush=True)
        sys.stdin.readline()
        yield from chunks[1:]

    return pa.RecordBatchReader.from_batches(table.schema, batches())


def main() -> None:
    mode = sys.argv[1]
    job, tags = faults_job, {"fault": mode}
    if mode == "land":
        storage.in_batches = stalled_batches
        os.environ["FAULT_PRODUCT"] = sys.argv[3]  # read where the job is reconstructed
        job, tags = shop_job, {"dagster/run_key": sys.argv[2]}
        tags |= {"dagster/partition": sys.argv[4]} if len(sys.argv) > 4 else {}
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(dg.reconstructable(job), instance, tags=tags)
        print(f"run {result.run_id} {'succeeded' if result.success else 'failed'}", flush=True)


if __name__ == "__main__":
    main()
