"""Quality intelligence of the platform, switched on per product from its contract.

- `anomaly`: AutoML-style anomaly detection (robust z, IsolationForest, ECOD, chosen without
  labels) with plain-language explanations; flagged rows go to `<product>_anomalies`.
- `imputation`: model-based filling of columns a contract marks `imputable`.
- `drift`: Evidently drift reports on bounded, stratified samples, with the root cause.
- `score`: an explainable quality score per product; `alerts`: file and webhook alerts.
- `checks`: how all of it plugs into a product's asset (`anomalies` and `drift` checks).
- `companions`: the generated `<product>_anomalies` products (contracts and assets).
"""

from dagster_project.checks.quality.config import QualityConfig, quality_config

__all__ = ["QualityConfig", "quality_config"]
