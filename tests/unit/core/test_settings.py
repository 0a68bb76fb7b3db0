"""Settings: every environment variable read in one place, typed, with its default, a
clear message for a value the mesh cannot use, and a line in the README."""

from __future__ import annotations

import os
import re
from dataclasses import fields, replace
from pathlib import Path

import pytest

from dagster_project.core.settings import (
    DEFAULT_HOME,
    ENGINE_PREFIX,
    MeshSettings,
    Settings,
    SettingsError,
    environment_restored,
)

README = Path(__file__).parents[3] / "README.md"
VARIABLES = [f.metadata["env"] for f in fields(Settings) if "env" in f.metadata]
VARIABLES.append(f"{ENGINE_PREFIX}<DOMAIN>")

# variable -> (value set, field, value read)
EVERY_VARIABLE = {
    "MESH_HOME": ("s3://bucket/mesh", "home", "s3://bucket/mesh"),
    "MESH_STORAGE_OPTIONS": (
        '{"AWS_ALLOW_HTTP": "true"}',
        "storage_options",
        {"AWS_ALLOW_HTTP": "true"},
    ),
    "DAGSTER_HOME": ("/srv/dagster", "dagster_home", "/srv/dagster"),
    "SPARK_REMOTE": ("sc://spark:15002", "spark_remote", "sc://spark:15002"),
    "MESH_AI_PROVIDER": ("offline", "ai_provider", "offline"),
    "OPENAI_API_KEY": ("sk-test-123456", "openai_api_key", "sk-test-123456"),
    "OPENAI_BASE_URL": (
        "http://127.0.0.1:11434/v1",
        "openai_base_url",
        "http://127.0.0.1:11434/v1",
    ),
    "MESH_LLM_MODEL": ("llama3.2", "llm_model", "llama3.2"),
    "MESH_EMBEDDING_MODEL": ("nomic-embed-text", "embedding_model", "nomic-embed-text"),
    "MESH_LLM_TIMEOUT": ("2.5", "llm_timeout", 2.5),
    "MESH_LLM_MAX_RETRIES": ("0", "llm_max_retries", 0),
    "MESH_AI_SHARE_SAMPLES": ("yes", "ai_share_samples", True),
    "MLFLOW_TRACKING_URI": ("http://mlflow:5000", "mlflow_tracking_uri", "http://mlflow:5000"),
    "MESH_ACCESS_POLICY": ("/etc/mesh/access.yaml", "access_policy", "/etc/mesh/access.yaml"),
    "MESH_API_ANONYMOUS_ROLE": (" none ", "api_anonymous_role", "none"),
    "MESH_ALERT_WEBHOOK_URL": ("http://chat/hook", "alert_webhook_url", "http://chat/hook"),
    "MESH_SHARING_ENDPOINT": ("https://share/x", "sharing_endpoint", "https://share/x"),
    "MESH_SHARES": ("/etc/mesh/shares.yaml", "shares_file", "/etc/mesh/shares.yaml"),
    "MESH_LANDING_STABLE": ("Marker", "landing_stable", "marker"),
    "MESH_LANDING_MIN_AGE_SECONDS": ("2.5", "landing_min_age", 2.5),
    "MESH_LANDING_INTERVAL": ("5", "landing_interval", 5),
    "MESH_AUTOMATION_INTERVAL": ("20", "automation_interval", 20),
    "MESH_ENGINE_<DOMAIN>": ("spark", "engines", {"sales": "spark"}),
    "MESH_RUN_START_TIMEOUT": ("60", "run_start_timeout", 60),
    "MESH_RUN_CANCEL_TIMEOUT": ("0", "run_cancel_timeout", 0),
    "MESH_RUN_MAX_RUNTIME": ("86400", "run_max_runtime", 86400),
    "MESH_RUN_MONITOR_INTERVAL": ("5", "run_monitor_interval", 5),
    "MESH_RUN_FREE_SLOTS_AFTER": ("1", "run_free_slots_after", 1),
    "MESH_ASK_DAEMON": ("off", "ask_daemon", False),
    "MESH_ASK_DAEMON_IDLE": ("30", "ask_daemon_idle", 30),
}


def test_every_variable_is_read_into_its_typed_field() -> None:
    assert set(EVERY_VARIABLE) == set(VARIABLES)
    environ = {name: value for name, (value, _, _) in EVERY_VARIABLE.items()}
    environ["MESH_ENGINE_SALES"] = environ.pop("MESH_ENGINE_<DOMAIN>")
    settings = Settings.from_env(environ)
    for name, (_, field, expected) in EVERY_VARIABLE.items():
        assert getattr(settings, field) == expected, name


def test_unset_and_empty_variables_take_the_defaults() -> None:
    defaults = Settings.from_env({})
    assert defaults == Settings()
    assert (defaults.home, defaults.storage_options, defaults.engines) == (DEFAULT_HOME, {}, {})
    assert (defaults.llm_model, defaults.embedding_model) == (
        "gpt-4o-mini",
        "text-embedding-3-small",
    )
    assert (defaults.llm_timeout, defaults.llm_max_retries) == (30.0, 2)
    assert defaults.ai_share_samples is False and defaults.api_anonymous_role == "analyst"
    assert defaults.ai_provider is None and defaults.mlflow_tracking_uri is None
    assert (defaults.landing_stable, defaults.landing_min_age) == ("ticks", 10.0)
    assert (defaults.landing_interval, defaults.automation_interval) == (10, 15)
    assert (defaults.run_start_timeout, defaults.run_cancel_timeout) == (180, 180)
    assert (defaults.run_max_runtime, defaults.run_monitor_interval) == (0, 30)
    blank = {name: " " for name in EVERY_VARIABLE if "<" not in name} | {"MESH_ENGINE_SALES": ""}
    assert Settings.from_env(blank) == replace(defaults, api_anonymous_role="")


def test_an_empty_anonymous_role_is_kept_it_means_no_anonymous_access() -> None:
    assert Settings.from_env({"MESH_API_ANONYMOUS_ROLE": ""}).api_anonymous_role == ""


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("MESH_LLM_TIMEOUT", "soon", "a number"),
        ("MESH_LLM_MAX_RETRIES", "2.5", "a whole number"),
        ("MESH_AI_SHARE_SAMPLES", "maybe", "1/0, true/false, yes/no or on/off"),
        ("MESH_STORAGE_OPTIONS", "{AWS_REGION: eu}", "a JSON object"),
        ("MESH_STORAGE_OPTIONS", '["not", "an", "object"]', "a JSON object"),
        ("MESH_LANDING_STABLE", "size", "ticks or marker"),
        ("MESH_LANDING_MIN_AGE_SECONDS", "-1", "a number of seconds (0 or more)"),
        ("MESH_LANDING_INTERVAL", "0", "a positive number"),
        ("MESH_RUN_START_TIMEOUT", "-5", "a whole number of seconds, 0 or more"),
        ("MESH_RUN_MAX_RUNTIME", "1h", "a whole number of seconds, 0 or more"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_and_what_it_takes(
    name: str, value: str, expected: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({name: value})
    message = str(refused.value)
    assert message.startswith(f"{name}={value!r} is not {expected}")
    assert message.endswith("fix or unset it") and "\n" not in message


def test_flags_read_the_usual_spellings() -> None:
    for value, expected in [("1", True), ("TRUE", True), ("on", True), ("0", False), ("no", False)]:
        assert Settings.from_env({"MESH_AI_SHARE_SAMPLES": value}).ai_share_samples is expected


def test_engines_are_per_domain_and_secrets_are_the_secret_named_variables() -> None:
    settings = Settings.from_env(
        {
            "MESH_ENGINE_SALES": " Spark ",
            "MESH_ENGINE_INVENTORY": "local",
            "MESH_MASK_KEY": "mask-key-value",
            "GITHUB_TOKEN": "ghp_value",
            "EMPTY_PASSWORD": "",
            "MESH_HOME": "/data/mesh",
        }
    )
    assert settings.engines == {"sales": "Spark", "inventory": "local"}
    assert settings.secrets == {"MESH_MASK_KEY": "mask-key-value", "GITHUB_TOKEN": "ghp_value"}


def test_secrets_never_show_in_the_settings_repr() -> None:
    settings = Settings.from_env({"OPENAI_API_KEY": "sk-hidden-1", "DB_PASSWORD": "hidden-2"})
    assert "hidden" not in repr(settings)


def test_the_process_environment_is_read_at_each_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_LLM_MODEL", "first")
    assert Settings.from_env().llm_model == "first"
    monkeypatch.setenv("MESH_LLM_MODEL", "second")
    assert Settings.from_env().llm_model == "second"


def test_mesh_settings_default_to_the_environments_home_and_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESH_HOME", str(tmp_path / "mesh"))
    monkeypatch.setenv("MESH_STORAGE_OPTIONS", '{"region": "eu-west-1"}')
    settings = MeshSettings()
    assert settings.home == str(tmp_path / "mesh")
    assert settings.storage_options == {"region": "eu-west-1"}
    assert settings.table_uri("sales", "stores") == f"{tmp_path}/mesh/lake/sales/stores"
    assert MeshSettings(home="s3://b/m").storage_options == {"region": "eu-west-1"}
    assert MeshSettings(home="s3://b/m", storage_options={}).storage_options == {}


def test_environment_restored_puts_back_what_a_library_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://before")
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    with environment_restored("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        os.environ["MLFLOW_TRACKING_URI"] = "http://during"
        os.environ["MLFLOW_REGISTRY_URI"] = "http://during"
    assert os.environ["MLFLOW_TRACKING_URI"] == "http://before"
    assert "MLFLOW_REGISTRY_URI" not in os.environ


def test_the_readme_documents_every_variable_once() -> None:
    section = README.read_text().split("### Configuration", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| `([A-Z_<>]+)`", section, flags=re.MULTILINE)
    for name in VARIABLES:
        assert rows.count(name) == 1, name
