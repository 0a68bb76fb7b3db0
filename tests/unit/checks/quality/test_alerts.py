import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest

from dagster_project.checks.quality.alerts import Alert, read_alerts, send


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict]] = []
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(json.loads(body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def webhook() -> Iterator[tuple[str, type[_Hook]]]:
    """A real HTTP server on a free loopback port, recording what it is sent."""
    handler = type("Hook", (_Hook,), {"received": [], "status": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/alerts", handler
    server.shutdown()
    server.server_close()


def _alert() -> Alert:
    return Alert(
        "sales/order_lines",
        "drift",
        "WARN",
        "sales/order_lines: channel drifted; online went from 22% to 80% of rows",
        {"drifted": ["channel"]},
        "/mesh/reports/drift/sales/order_lines/2025-03-10.html",
    )


def test_alerts_are_kept_as_json_lines_under_mesh_home(mesh_home, monkeypatch):
    monkeypatch.delenv("MESH_ALERT_WEBHOOK_URL", raising=False)
    first = send(mesh_home, _alert())
    send(mesh_home, _alert())
    assert first.webhook is None
    assert first.file.startswith(f"{mesh_home.home}/alerts/") and first.file.endswith(".jsonl")
    lines = read_alerts(mesh_home, _alert().raised_at[:10])
    assert len(lines) == 2
    assert lines[0]["text"].startswith("sales/order_lines: channel drifted")
    assert lines[0]["link"].endswith(".html") and lines[0]["severity"] == "WARN"


def test_the_webhook_from_the_environment_gets_the_same_alert(mesh_home, monkeypatch, webhook):
    url, hook = webhook
    monkeypatch.setenv("MESH_ALERT_WEBHOOK_URL", url)
    delivery = send(mesh_home, _alert())
    assert delivery.webhook == "sent"
    assert hook.received[0]["text"] == _alert().text  # chat tools show `text` as is
    assert hook.received[0]["details"] == {"drifted": ["channel"]}


def test_a_failing_webhook_is_reported_not_raised(mesh_home, webhook):
    url, hook = webhook
    hook.status = 500
    delivery = send(mesh_home, _alert(), webhook_url=url)
    assert delivery.webhook.startswith("not sent: HTTPError")
    assert len(read_alerts(mesh_home, _alert().raised_at[:10])) == 1  # the file still has it
    unreachable = send(mesh_home, _alert(), webhook_url="http://127.0.0.1:9/nothing")
    assert unreachable.webhook.startswith("not sent: ConnectionError")
