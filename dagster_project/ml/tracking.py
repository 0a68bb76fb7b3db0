"""MLflow as a Dagster resource: tracking, the model registry and champion/challenger.

Tracking lives in a sqlite database under MESH_HOME (MLflow 3 refuses a plain file store)
with artifacts in MESH_HOME/mlartifacts; `MLFLOW_TRACKING_URI` from the environment
wins. Assets call MLflow directly through the resource; a model version becomes the
`champion` (the alias consumers load) only when it beats the current one on the same
backtest, and the decision is written to the registry.

mlflow is imported lazily: it costs seconds, and code locations load without it.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import time
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cloudpickle
import dagster as dg

from dagster_project.checks.fairness import Disparity
from dagster_project.core.settings import MeshSettings, Settings, environment_restored


class _ByValueOnPurpose(logging.Filter):
    """Drops MLflow's warning that a `python_model` object is pickled: `log_pyfunc`
    pickles by value on purpose (loading a model needs neither this project nor its
    import path), so the warning would only repeat our choice on every model."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "serialized using CloudPickle" not in record.getMessage()


BY_VALUE_ON_PURPOSE = _ByValueOnPurpose()

if TYPE_CHECKING:
    import mlflow
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.pyfunc import PyFuncModel

CHAMPION = "champion"
DEFAULT_UI_URL = "http://127.0.0.1:5000"
_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def default_tracking_uri(settings: MeshSettings) -> str:
    """`MLFLOW_TRACKING_URI`, else `sqlite:///<MESH_HOME>/mlflow.db`."""
    configured = Settings.from_env().mlflow_tracking_uri
    if configured:
        return configured
    if not settings.is_local:
        raise ValueError("set MLFLOW_TRACKING_URI when MESH_HOME is an object-store URI")
    home = settings.home.removeprefix("file://")
    return f"sqlite:///{Path(home) / 'mlflow.db'}"


def default_artifact_root(settings: MeshSettings) -> str:
    return settings.uri("mlartifacts")


def _mlflow() -> types.ModuleType:
    """The mlflow module, imported on first use: the one import of it here."""
    import mlflow

    return mlflow


def pinned(*packages: str) -> list[str]:
    """`name==version` of installed packages: explicit requirements for `log_model`
    (MLflow's own inference imports the model in a subprocess, seconds per model)."""
    return [f"{p}=={importlib.metadata.version(p)}" for p in packages]


class MLflowResource(dg.ConfigurableResource):
    """MLflow tracking and registry for the mesh. Empty fields take the defaults above
    (`home` defaults to MESH_HOME); `ui_url` is where links in metadata point."""

    home: str | None = None
    tracking_uri: str | None = None
    artifact_root: str | None = None
    ui_url: str = DEFAULT_UI_URL

    @property
    def settings(self) -> MeshSettings:
        return MeshSettings(home=self.home) if self.home else MeshSettings()

    @property
    def resolved_tracking_uri(self) -> str:
        return self.tracking_uri or default_tracking_uri(self.settings)

    @property
    def resolved_artifact_root(self) -> str:
        return self.artifact_root or default_artifact_root(self.settings)

    def client(self) -> MlflowClient:
        uri = self.resolved_tracking_uri
        return _mlflow().MlflowClient(tracking_uri=uri, registry_uri=uri)

    @contextlib.contextmanager
    def active(self) -> Iterator[types.ModuleType]:
        """The `mlflow` module pointed at this resource's tracking and registry. Its fluent
        API is process-global (URIs and their environment variables), so everything is put
        back afterwards: a later resource with another home must not inherit them."""
        mlflow = _mlflow()
        registry = mlflow.tracking._model_registry.utils
        tracking = mlflow.tracking._tracking_service.utils
        saved = (tracking._tracking_uri, registry._registry_uri)
        with environment_restored(*_URI_VARIABLES):
            mlflow.set_tracking_uri(self.resolved_tracking_uri)
            mlflow.set_registry_uri(self.resolved_tracking_uri)
            try:
                yield mlflow
            finally:
                tracking._tracking_uri, registry._registry_uri = saved

    def experiment_id(self, name: str) -> str:
        """The experiment's id, created with its artifacts under the artifact root."""
        client = self.client()
        found = client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        safe = name.replace("/", "_").replace(".", "_")
        location = f"{self.resolved_artifact_root.rstrip('/')}/{safe}"
        return client.create_experiment(name, artifact_location=location)

    @contextlib.contextmanager
    def start_run(
        self, experiment: str, run_name: str | None = None, tags: dict[str, str] | None = None
    ) -> Iterator[mlflow.ActiveRun]:
        experiment_id = self.experiment_id(experiment)
        with (
            self.active() as mlflow,
            mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags) as run,
        ):
            yield run

    def log_run(
        self, run_id: str, *, params: dict[str, Any] | None = None, metrics: dict[str, float]
    ) -> None:
        """Parameters and metrics of a run, in one batch."""
        entities = _mlflow().entities
        now = int(time.time() * 1000)
        self.client().log_batch(
            run_id,
            metrics=[entities.Metric(k, float(v), now, 0) for k, v in metrics.items()],
            params=[entities.Param(k, str(v)) for k, v in (params or {}).items()],
        )

    def log_pyfunc(
        self,
        model: Any,
        name: str,
        *,
        pip_requirements: Sequence[str],
        example: Any = None,
        by_value: Sequence[types.ModuleType] = (),
    ) -> Any:
        """Log a `mlflow.pyfunc.PythonModel` in the active run, its signature inferred from
        `example` (a pandas frame of inputs). Modules in `by_value` are pickled into the
        model, so loading it needs neither this project nor its import path."""
        signature = None
        if example is not None:
            signature = _mlflow().models.infer_signature(example, model.predict(None, example))
        logging.getLogger("mlflow.pyfunc").addFilter(BY_VALUE_ON_PURPOSE)  # once: same filter
        with self.active() as mlflow:
            for module in by_value:
                cloudpickle.register_pickle_by_value(module)
            try:
                return mlflow.pyfunc.log_model(
                    name=name,
                    python_model=model,
                    pip_requirements=list(pip_requirements),
                    signature=signature,
                    input_example=example,
                )
            finally:
                for module in by_value:
                    cloudpickle.unregister_pickle_by_value(module)

    def register(
        self, name: str, model_uri: str, run_id: str, tags: dict[str, str]
    ) -> ModelVersion:
        """A new version of registered model `name` from a logged model."""
        client = self.client()
        # The sqlite registry looks the logged model up through the global client.
        with self.active() as mlflow:
            try:
                client.get_registered_model(name)
            except mlflow.MlflowException:
                client.create_registered_model(name)
            return client.create_model_version(name, model_uri, run_id=run_id, tags=tags)

    def version_by_alias(self, name: str, alias: str = CHAMPION) -> ModelVersion | None:
        mlflow = _mlflow()
        try:
            return self.client().get_model_version_by_alias(name, alias)
        except mlflow.MlflowException:
            return None

    def load(self, name: str, alias: str = CHAMPION) -> PyFuncModel:
        """The model version the alias points at, as a pyfunc model."""
        with self.active() as mlflow:
            return mlflow.pyfunc.load_model(f"models:/{name}@{alias}")

    def load_version(self, name: str, version: str) -> PyFuncModel:
        with self.active() as mlflow:
            return mlflow.pyfunc.load_model(f"models:/{name}/{version}")

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.ui_url}/#/experiments/{experiment_id}/runs/{run_id}"

    def model_url(self, name: str, version: str) -> str:
        return f"{self.ui_url}/#/models/{name}/versions/{version}"


# -- champion / challenger ---------------------------------------------------------------


@dataclass(frozen=True)
class ChampionDecision:
    """Whether a new model version replaced the champion, and why."""

    model: str
    challenger_version: str
    champion_version: str | None  # the champion before the decision
    metric: str
    challenger_score: float
    champion_score: float | None
    promoted: bool
    reason: str
    fairness: str = "not declared"  # passed, refused, flagged (no champion to keep), ...
    worst_segment_gap: float | None = None
    worst_segment: str | None = None

    @property
    def champion_after(self) -> str | None:
        return self.challenger_version if self.promoted else self.champion_version

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "champion_after": self.champion_after}


def decide(
    challenger: float, champion: float | None, *, metric: str, min_improvement: float = 0.0
) -> tuple[bool, str]:
    """Lower is better: the challenger wins only by beating the champion's score on the
    same backtest by more than `min_improvement` (relative)."""
    if champion is None:
        return (
            True,
            f"no champion could be scored: the challenger becomes champion "
            f"({metric} {challenger:.4f})",
        )
    if challenger < champion * (1 - min_improvement):
        return True, f"{metric} {challenger:.4f} beats the champion's {champion:.4f}"
    return False, f"{metric} {challenger:.4f} does not beat the champion's {champion:.4f}"


@dataclass(frozen=True)
class FairnessGate:
    """Mitigation at promotion: the worst segment's error gap of the challenger on its
    backtest, and how to measure the champion's on the same rows (None: not judged)."""

    challenger: Disparity | None
    champion: Callable[[PyFuncModel], Disparity | None]


def champion_challenger(
    ml: MLflowResource,
    name: str,
    challenger_version: str,
    challenger_score: float,
    score: Callable[[PyFuncModel], float],
    *,
    metric: str,
    min_improvement: float = 0.0,
    log: Callable[[str], None] | None = None,
    fairness: FairnessGate | None = None,
) -> ChampionDecision:
    """Score the current champion with `score` (the challenger's backtest), move the
    champion alias if the challenger wins, and record the decision on both versions.
    With a `fairness` gate, a challenger that widens the worst segment's error gap
    beyond its threshold is refused even when it is more accurate overall."""
    current = ml.version_by_alias(name)
    current_version = None if current is None else str(current.version)
    challenger_version = str(challenger_version)
    champion_score = None
    if current_version is not None and current_version != challenger_version:
        try:
            champion_score = float(score(ml.load_version(name, current_version)))
        except Exception as exc:  # an incompatible old model cannot defend its title
            if log:
                log(f"champion v{current_version} could not score the backtest: {exc}")
    promoted, reason = decide(
        challenger_score, champion_score, metric=metric, min_improvement=min_improvement
    )
    gate = {}
    if fairness is not None:
        champion = None
        if promoted and current_version not in (None, challenger_version):
            champion = ml.load_version(name, current_version)
        promoted, reason, gate = _fairness_gate(fairness, promoted, reason, champion)
    decision = ChampionDecision(
        model=name,
        challenger_version=challenger_version,
        champion_version=current_version,
        metric=metric,
        challenger_score=challenger_score,
        champion_score=champion_score,
        promoted=promoted,
        reason=reason,
        **gate,
    )
    _record(ml, decision)
    return decision


def _fairness_gate(
    gate: FairnessGate, promoted: bool, reason: str, champion: PyFuncModel | None
) -> tuple[bool, str, dict[str, Any]]:
    worst = gate.challenger
    if worst is None:
        return promoted, reason, {"fairness": "not judged"}
    found = {"worst_segment_gap": worst.gap, "worst_segment": f"{worst.segment}={worst.group}"}
    if not worst.flagged:
        return promoted, reason, {**found, "fairness": "passed"}
    if not promoted:
        return promoted, reason, {**found, "fairness": "flagged"}
    if champion is None:  # nothing else could serve the forecast: promote, and say so
        note = f"; fairness: {worst.sentence()} (no champion to keep instead)"
        return True, reason + note, {**found, "fairness": "flagged, no champion to keep"}
    held = gate.champion(champion)
    if held is not None and held.gap >= worst.gap:
        return True, reason, {**found, "fairness": "flagged, no wider than the champion's"}
    before = "not judged" if held is None else f"{held.gap:.0%}"
    refusal = (
        f"refused: it widens the worst segment's error gap ({worst.sentence()}; "
        f"the champion's gap: {before}), although {reason}"
    )
    return False, refusal, {**found, "fairness": "refused"}


def _record(ml: MLflowResource, decision: ChampionDecision) -> None:
    client = ml.client()
    if decision.promoted:
        client.set_registered_model_alias(decision.model, CHAMPION, decision.challenger_version)
    tags = {
        "champion_decision": "promoted" if decision.promoted else "rejected",
        "champion_reason": decision.reason,
        "champion_before": decision.champion_version or "",
        f"champion_{decision.metric}": (
            "" if decision.champion_score is None else f"{decision.champion_score:.6f}"
        ),
        "fairness_gate": decision.fairness,
        "worst_segment": decision.worst_segment or "",
    }
    for key, value in tags.items():
        client.set_model_version_tag(decision.model, decision.challenger_version, key, value)
    version = client.get_model_version(decision.model, decision.challenger_version)
    if version.run_id:
        client.log_text(
            version.run_id, json.dumps(decision.as_dict(), indent=2), "champion_decision.json"
        )
        client.set_tag(version.run_id, "champion_decision", tags["champion_decision"])
        client.set_tag(version.run_id, "fairness_gate", decision.fairness)
        if decision.worst_segment_gap is not None:
            client.log_metric(version.run_id, "worst_segment_gap", decision.worst_segment_gap)
