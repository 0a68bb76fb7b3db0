"""Configuration: every environment variable the mesh reads is read here, and only here.

`Settings.from_env()` is the environment as one typed, frozen object (called per use);
`Limits` the limits of every query and request. README.md, "Configuration", lists all.
Standard library only: a question to `mesh ask`'s warm process is sent with these alone
(`core.settings` adds where the mesh keeps its data, and pyarrow's filesystems).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any


def is_uri(location: str) -> bool:
    return "://" in location


DEFAULT_HOME = "./.mesh"
# Default first day of a product's daily partitions, when its contract declares none
# (`partitionStart`) and none of its data is older; the simulator never lands before it.
PARTITION_START = date(2024, 1, 1)
ENGINE_PREFIX = "MESH_ENGINE_"
# When a landing file is complete: unchanged across two sensor ticks, or marked done.
LANDING_STABILITY = ("ticks", "marker")
# Environment variables whose values are secrets wherever they appear.
SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|CREDENTIALS?)$", re.IGNORECASE)
_FLAGS = dict.fromkeys(("1", "true", "yes", "on"), True) | dict.fromkeys(
    ("0", "false", "no", "off"), False
)


class SettingsError(ValueError):
    """An environment variable holds a value the mesh cannot use."""


def _flag(raw: str) -> bool:
    return _FLAGS[raw.lower()]


def _seconds(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError(raw)
    return value


def _json_object(raw: str) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError(raw)
    return value


def _stability(raw: str) -> str:
    if raw.lower() not in LANDING_STABILITY:
        raise ValueError(raw)
    return raw.lower()


def _duration(raw: str) -> float:
    value = float(raw)
    if value < 0:
        raise ValueError(raw)
    return value


def _positive(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError(raw)
    return value


def _positive_int(raw: str) -> int:
    return int(_positive(raw))


_EXPECTED = {float: "a number", int: "a whole number", _flag: "1/0, true/false, yes/no or on/off"}
_EXPECTED[_seconds] = "a whole number of seconds, 0 or more"
_EXPECTED[_json_object] = 'a JSON object, e.g. {"AWS_REGION": "eu-west-1"}'
_EXPECTED[_stability] = "ticks or marker"
_EXPECTED[_duration] = "a number of seconds (0 or more)"
_EXPECTED[_positive] = _EXPECTED[_positive_int] = "a positive number"


def _env(name: str, default: Any = None, parse: Any = str, keep_empty: bool = False, **kw: Any):
    """A field read from the variable `name`; unset or empty (unless `keep_empty`) keeps
    the default."""
    return field(default=default, **kw, metadata={"env": name, "parse": parse, "empty": keep_empty})


def _from_env(cls: type, env: Mapping[str, str]) -> dict[str, Any]:
    """The fields of `cls` that `env` sets, parsed."""
    values: dict[str, Any] = {}
    for f in (f for f in fields(cls) if "env" in f.metadata):
        name, parse, raw = f.metadata["env"], f.metadata["parse"], env.get(f.metadata["env"])
        if raw is None or not (raw.strip() or f.metadata.get("empty")):
            continue
        try:
            values[f.name] = parse(raw.strip())
        except (ValueError, KeyError):
            expected = _EXPECTED.get(parse, "valid")
            raise SettingsError(f"{name}={raw!r} is not {expected}; fix or unset it") from None
    return values


@dataclass(frozen=True)
class Settings:
    """What the environment configures (README.md, "Configuration", says what each is)."""

    home: str = _env("MESH_HOME", DEFAULT_HOME)
    storage_options: dict[str, Any] = field(
        default_factory=dict, metadata={"env": "MESH_STORAGE_OPTIONS", "parse": _json_object}
    )
    dagster_home: str | None = _env("DAGSTER_HOME")
    spark_remote: str | None = _env("SPARK_REMOTE")
    ai_provider: str | None = _env("MESH_AI_PROVIDER")
    openai_api_key: str | None = _env("OPENAI_API_KEY", repr=False)
    openai_base_url: str | None = _env("OPENAI_BASE_URL")
    llm_model: str = _env("MESH_LLM_MODEL", "gpt-4o-mini")
    embedding_model: str = _env("MESH_EMBEDDING_MODEL", "text-embedding-3-small")
    llm_timeout: float = _env("MESH_LLM_TIMEOUT", 30.0, float)
    llm_max_retries: int = _env("MESH_LLM_MAX_RETRIES", 2, int)
    ai_share_samples: bool = _env("MESH_AI_SHARE_SAMPLES", False, _flag)
    mlflow_tracking_uri: str | None = _env("MLFLOW_TRACKING_URI")
    access_policy: str | None = _env("MESH_ACCESS_POLICY")
    # Set but empty means "no anonymous access".
    api_anonymous_role: str = _env("MESH_API_ANONYMOUS_ROLE", "analyst", keep_empty=True)
    alert_webhook_url: str | None = _env("MESH_ALERT_WEBHOOK_URL")
    sharing_endpoint: str | None = _env("MESH_SHARING_ENDPOINT")
    shares_file: str | None = _env("MESH_SHARES")
    landing_stable: str = _env("MESH_LANDING_STABLE", "ticks", _stability)
    landing_min_age: float = _env("MESH_LANDING_MIN_AGE_SECONDS", 10.0, _duration)
    # How often the landing sensors and the automation sensors tick (README: Operations).
    landing_interval: int = _env("MESH_LANDING_INTERVAL", 10, _positive_int)
    automation_interval: int = _env("MESH_AUTOMATION_INTERVAL", 15, _positive_int)
    # Run monitoring (the Dagster daemon and `mesh runs --clear-dead`): a run that has not
    # started, or not finished cancelling, after its timeout fails; 0 switches a limit off.
    run_start_timeout: int = _env("MESH_RUN_START_TIMEOUT", 180, _seconds)
    run_cancel_timeout: int = _env("MESH_RUN_CANCEL_TIMEOUT", 180, _seconds)
    run_max_runtime: int = _env("MESH_RUN_MAX_RUNTIME", 0, _seconds)
    run_monitor_interval: int = _env("MESH_RUN_MONITOR_INTERVAL", 30, _seconds)
    run_free_slots_after: int = _env("MESH_RUN_FREE_SLOTS_AFTER", 10, _seconds)
    # `mesh ask`/`mesh sql` through a warm process (README: "Asking fast"): on or off,
    # and how long it stays without a question.
    ask_daemon: bool = _env("MESH_ASK_DAEMON", True, _flag)
    ask_daemon_idle: int = _env("MESH_ASK_DAEMON_IDLE", 600, _seconds)
    # MESH_ENGINE_<DOMAIN>: the engine of a whole domain, by domain name (lower case).
    engines: dict[str, str] = field(default_factory=dict)
    # Variables named like secrets (…_KEY, …_TOKEN, …_SECRET, …_PASSWORD, …_CREDENTIALS).
    secrets: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings `environ` (default: this process's environment) configures."""
        env = os.environ if environ is None else environ
        values = _from_env(cls, env)
        engines = {
            k.removeprefix(ENGINE_PREFIX).lower(): v.strip()
            for k, v in env.items()
            if k.startswith(ENGINE_PREFIX) and v.strip()
        }
        secrets = {k: v for k, v in env.items() if SECRET_NAME.search(k) and v.strip()}
        return cls(**values, engines=engines, secrets=secrets)


@contextlib.contextmanager
def environment_restored(*names: str) -> Iterator[None]:
    """Put the variables `names` back afterwards (for libraries that set process-wide ones,
    such as mlflow's tracking URI)."""
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None)
            if value is not None:
                os.environ[name] = value


# -- limits on what one caller can make the mesh do (README: Security) -----------------------
@dataclass(frozen=True)
class Limits:
    """Hard limits of every query (`mesh ask`, `mesh chat`, the HTTP API and page,
    insights) and of every request to the mesh's servers."""

    query_timeout_s: float = _env("MESH_QUERY_TIMEOUT_S", 10, _positive)
    query_memory_mb: int = _env("MESH_QUERY_MEMORY_MB", 1024, _positive_int)
    query_threads: int = _env("MESH_QUERY_THREADS", 2, _positive_int)
    query_temp_mb: int = _env("MESH_QUERY_TEMP_MB", 1024, _positive_int)
    query_result_mb: int = _env("MESH_QUERY_RESULT_MB", 32, _positive_int)
    # Queries running at once in one process, and for one caller (principal).
    query_workers: int = _env("MESH_QUERY_WORKERS", 4, _positive_int)
    query_workers_per_caller: int = _env("MESH_QUERY_WORKERS_PER_CALLER", 2, _positive_int)
    # Queries running at once for all anonymous callers together (each client address is
    # its own caller, so this bounds how many addresses one sender can crowd in with).
    query_workers_anonymous: int = _env("MESH_QUERY_WORKERS_ANONYMOUS", 2, _positive_int)
    max_sql_chars: int = _env("MESH_MAX_SQL_CHARS", 20_000, _positive_int)
    max_question_chars: int = _env("MESH_MAX_QUESTION_CHARS", 2_000, _positive_int)
    max_body_bytes: int = _env("MESH_MAX_BODY_BYTES", 65_536, _positive_int)
    # Audit rows per minute for requests nobody could be verified for (bad tokens, forged URLs).
    unverified_audits_per_minute: int = _env("MESH_UNVERIFIED_AUDITS_PER_MINUTE", 60, _positive_int)


def get_limits() -> Limits:
    """Limits for the current environment (read each call, like `get_settings`)."""
    return Limits(**_from_env(Limits, os.environ))
