"""The Spark session as a Dagster resource (pyspark is imported only when a session is made).

`local[*]` by default; a cluster's master URL (`spark://…`, `yarn`, `k8s://…`) or a Spark
Connect endpoint (`sc://…`, also from `SPARK_REMOTE`) from config. Over Spark Connect the
client sets runtime SQL settings only: static ones (Delta's extension, UI) belong to the
server's own configuration. The engine never needs the JVM or RDDs, so both session kinds
run it. With `delta_spark`
the session loads Delta Lake's Spark extension: production gets its jars either from a
cluster image that has them or, with network access, `configure_spark_with_delta_pip`
(pip package `delta-spark`), which adds `io.delta:delta-spark` to `spark.jars.packages`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg
from pydantic import PrivateAttr

from dagster_project.core.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Settings the engine relies on, whatever the deployment adds.
BASE_CONF = {
    # Parquet timestamps as INT64 micros (what delta-rs and polars read), not legacy INT96.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.session.timeZone": "UTC",
}
LOCAL_CONF = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false"}
DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}


class SparkResource(dg.ConfigurableResource):
    """A Spark session for products whose contract says `engine: spark`."""

    master: str = "local[*]"
    remote: str | None = None  # Spark Connect URL; defaults to SPARK_REMOTE
    app_name: str = "meshwork"
    shuffle_partitions: int = 8
    delta_spark: bool = False  # read and write with delta-spark (its jars must be reachable)
    conf: dict[str, str] | None = None  # extra Spark settings

    _session: SparkSession | None = PrivateAttr(default=None)

    def get_session(self) -> SparkSession:
        if self._session is None:
            self._session = self._build()
        return self._session

    def _build(self) -> SparkSession:
        from pyspark.sql import SparkSession

        builder = SparkSession.builder.appName(self.app_name)
        remote = self.remote or Settings.from_env().spark_remote
        if remote:
            builder = builder.remote(remote)
        else:
            builder = builder.master(self.master)
            for key, value in LOCAL_CONF.items():
                builder = builder.config(key, value)
        conf = {
            **BASE_CONF,
            "spark.sql.shuffle.partitions": str(self.shuffle_partitions),
            **(DELTA_CONF if self.delta_spark and not remote else {}),
            **(self.conf or {}),
        }
        for key, value in conf.items():
            builder = builder.config(key, value)
        if self.delta_spark and not remote and "spark.jars.packages" not in (self.conf or {}):
            from delta import configure_spark_with_delta_pip  # pip install delta-spark

            builder = configure_spark_with_delta_pip(builder)
        return builder.getOrCreate()
