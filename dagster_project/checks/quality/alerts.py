"""Plain-language alerts: a JSON-lines file under `MESH_HOME/alerts/`, and a webhook.

Every warning of a quality check (drift, too many anomalies) becomes one alert: one JSON
object per line in `alerts/<day>.jsonl`, and — when `MESH_ALERT_WEBHOOK_URL` is set — a
POST of the same object to that URL, with a top-level `text` so chat tools (Slack,
Mattermost, Teams workflows) show the message as is. A failing webhook is reported back,
never raised: an alert must not break the product's run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import requests

from dagster_project.core.settings import MeshSettings, Settings

TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Alert:
    product: str  # domain/product
    check: str
    severity: str  # "WARN" or "ERROR"
    text: str  # what happened, in plain words
    details: dict = field(default_factory=dict)
    link: str | None = None  # e.g. the drift report
    raised_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))


@dataclass(frozen=True)
class Delivery:
    """Where an alert went."""

    file: str
    webhook: str | None = None  # "sent", or why not; None when no webhook is configured


def alerts_uri(settings: MeshSettings, day: str | None = None) -> str:
    day = day or datetime.now(UTC).date().isoformat()
    return settings.uri("alerts", f"{day}.jsonl")


def send(settings: MeshSettings, alert: Alert, webhook_url: str | None = None) -> Delivery:
    """Append the alert to today's file and post it to the webhook, if any."""
    line = json.dumps(asdict(alert), default=str)
    uri = alerts_uri(settings, alert.raised_at[:10])
    previous = settings.files.read_text_or(uri, "")
    settings.files.write_text(uri, previous + line + "\n")  # object stores cannot append
    url = webhook_url if webhook_url is not None else Settings.from_env().alert_webhook_url
    return Delivery(uri, _post(url, alert) if url else None)


def _post(url: str, alert: Alert) -> str:
    try:
        response = requests.post(url, json=asdict(alert), timeout=TIMEOUT_S)
        response.raise_for_status()
        return "sent"
    except requests.RequestException as exc:
        return f"not sent: {type(exc).__name__}: {exc}"


def read_alerts(settings: MeshSettings, day: str | None = None) -> list[dict]:
    uri = alerts_uri(settings, day)
    return [json.loads(line) for line in settings.files.read_text_or(uri, "").splitlines() if line]
