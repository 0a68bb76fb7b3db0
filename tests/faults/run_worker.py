"""A Dagster run of one product-like asset, for the fault suite to kill.

    python -m tests.faults.run_worker hang|quick

Runs the job `faults_job` with `dg.execute_job` on the instance in DAGSTER_HOME (the
asset claims a slot of its pool, `mesh/faults/slow`, like every product). `hang` prints
`step started` from inside the step, then waits to be killed; `quick` just finishes.
Also a code location (`defs`) for `dagster-daemon run -f`.
"""

from __future__ import annotations

import sys
import time

import dagster as dg

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


def main() -> None:
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(
            dg.reconstructable(faults_job), instance, tags={"fault": sys.argv[1]}
        )
        print(f"run {result.run_id} {'succeeded' if result.success else 'failed'}", flush=True)


if __name__ == "__main__":
    main()
