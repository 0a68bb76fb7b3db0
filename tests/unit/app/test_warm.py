"""`mesh ask` through the warm process: the same payload as answering in-process, a
changed access policy never answered with the old one, an idle process ends, and with
MESH_ASK_DAEMON=off nothing is started. Real processes over a real Unix socket."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dagster_project.app import warm
from dagster_project.app.answers import Asker, respond
from dagster_project.metadata.semantics import load_semantic_layer
from tests.small_mesh import write_small_mesh

POLICY = Path("governance/access.yaml")
REQUEST = {"question": "revenue by region", "role": "analyst"}


@pytest.fixture
def warm_home(tmp_path, monkeypatch, demo_contracts, lake) -> Iterator[Path]:
    """The small mesh, the warm path on, its own copy of the access policy; the warm
    process is stopped afterwards."""
    write_small_mesh(lake, demo_contracts)
    policy = tmp_path / "governance" / POLICY.name  # beside the audit contract it names
    shutil.copytree(POLICY.parent / "contracts", policy.parent / "contracts")
    policy.write_text(POLICY.read_text())
    monkeypatch.setenv("MESH_ACCESS_POLICY", str(policy))
    monkeypatch.setenv("MESH_ASK_DAEMON", "on")
    path = warm.socket_path()
    assert path is not None, "the test's home makes a socket path too long"
    yield path
    subprocess.run(["pkill", "-TERM", "-f", str(path)], check=False)  # it ends cleanly
    until = time.monotonic() + 10
    while path.exists() and time.monotonic() < until:
        time.sleep(0.1)


def warm_reply(request: dict, seconds: float = 60) -> dict:
    """The warm process's reply, once it is up (the first call starts it)."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        reply = warm.ask_warm(request)
        if reply is not None:
            return reply
        time.sleep(0.2)
    raise AssertionError("the warm process never answered")


def answered_here(request: dict) -> dict:
    asker = Asker(role=request["role"], layer=load_semantic_layer())
    return json.loads(json.dumps(respond(asker, request), default=str))


def test_a_warm_answer_is_the_one_answered_in_process(warm_home: Path) -> None:
    assert warm.ask_warm(REQUEST) is None  # none yet: this call starts it
    reply = warm_reply(REQUEST)
    assert reply == answered_here(REQUEST)
    assert reply["answer"]["status"] == "answered" and reply["answer"]["rows"]
    sql = {"sql": "SELECT COUNT(*) AS n FROM sales.stores", "role": "analyst"}
    assert warm_reply(sql) == answered_here(sql)
    refused = {"sql": "DELETE FROM sales.stores", "role": "analyst"}
    assert warm_reply(refused) == answered_here(refused)
    assert warm_reply(refused)["bad_sql"] is True
    assert oct(warm_home.parent.stat().st_mode & 0o777) == "0o700"  # its folder: owner only


def test_a_changed_access_policy_is_never_answered_with_the_old_one(warm_home: Path) -> None:
    warm.ask_warm(REQUEST)
    assert "answer" in warm_reply(REQUEST)
    policy = Path(os.environ["MESH_ACCESS_POLICY"])
    text = policy.read_text()
    revoked = text.replace('      - products: ["*/*"]\n        unless: [restricted]', "      []", 1)
    assert revoked != text
    policy.write_text(revoked.replace("    grants:\n      []", "    grants: []", 1))
    assert warm.ask_warm(REQUEST) is None  # stale: it ends, the question is asked here
    reply = warm_reply(REQUEST)  # a new process, on the new policy
    assert reply == answered_here(REQUEST) and "answer" not in reply, reply


def test_an_idle_warm_process_ends(warm_home: Path, monkeypatch) -> None:
    monkeypatch.setenv("MESH_ASK_DAEMON_IDLE", "1")
    warm.ask_warm(REQUEST)
    warm_reply(REQUEST)
    until = time.monotonic() + 30
    while warm_home.exists() and time.monotonic() < until:
        time.sleep(0.2)
    assert not warm_home.exists()


def test_switched_off_nothing_starts(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("MESH_ASK_DAEMON", "off")
    assert warm.socket_path() is None and warm.ask_warm(REQUEST) is None


def test_a_warm_question_does_not_import_the_engine(warm_home: Path) -> None:
    warm.ask_warm(REQUEST)
    warm_reply(REQUEST)
    code = (
        "import sys; from dagster_project.app.cli import app\n"
        "try:\n    app(['ask', 'revenue by region'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('dagster_project.ask.engine',"
        " 'polars', 'duckdb', 'deltalake', 'dagster.'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert "North" in done.stdout and done.stdout.strip().endswith("[]"), done.stdout


def test_a_warm_process_that_cannot_start_is_not_started_again_at_once(warm_home: Path) -> None:
    Path(os.environ["MESH_ACCESS_POLICY"]).write_text("roles: [unclosed\n")  # unreadable
    assert warm.ask_warm(REQUEST) is None  # starts one, which fails
    failed = warm_home.with_suffix(".failed")
    until = time.monotonic() + 60
    while not failed.exists() and time.monotonic() < until:
        time.sleep(0.2)
    assert failed.exists(), warm_home.with_suffix(".log").read_text()[-2000:]
    time.sleep(1)  # the failed one has exited
    assert warm.ask_warm(REQUEST) is None
    time.sleep(1)
    running = subprocess.run(["pgrep", "-f", str(warm_home)], capture_output=True, text=True)
    assert running.stdout.strip() == ""  # none started again


def test_a_warm_search_is_the_one_searched_in_process(warm_home: Path) -> None:
    from dagster_project.app.answers import search_here

    request = {"search": "where are our shops", "k": 5, "kinds": None}
    warm.ask_warm(request)
    reply = warm_reply(request)
    assert reply == json.loads(json.dumps(search_here(request))) and reply["hits"]
    wrong = {"search": "x", "k": 3, "kinds": ["table"]}
    assert warm_reply(wrong) == {"unknown_kinds": ["table"], "known_kinds": reply_kinds()}


def reply_kinds() -> list[str]:
    from dagster_project.metadata.discovery import KINDS

    return list(KINDS)


def _raw(path: Path, data: bytes) -> bytes:
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(30)
        conn.connect(str(path))
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        return b"".join(iter(lambda: conn.recv(1 << 16), b""))


def test_a_malformed_request_is_no_answer_and_the_process_keeps_answering(warm_home: Path) -> None:
    warm.ask_warm(REQUEST)
    warm_reply(REQUEST)
    assert json.loads(_raw(warm_home, b"not json\n"))["failed"].startswith("JSONDecodeError")
    assert json.loads(_raw(warm_home, b"[1, 2]\n")) == {}
    huge = json.dumps({"question": "x" * 5_000, "role": "analyst"}).encode() + b"\n"
    assert "refused" in json.loads(_raw(warm_home, huge)) or "failed" in json.loads(
        _raw(warm_home, huge)
    )
    assert "answer" in warm_reply(REQUEST)


def test_another_users_process_gets_no_answer(warm_home: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to connect as another user")
    warm.ask_warm(REQUEST)
    warm_reply(REQUEST)
    os.chmod(warm_home.parent, 0o755)  # even with the folder opened to others
    os.chmod(warm_home, 0o777)
    code = (
        "import os, socket, sys\nos.setgid(65534); os.setuid(65534)\n"
        "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
        's.sendall(b\'{"question": "revenue by region"}\\n\'); s.shutdown(socket.SHUT_WR)\n'
        "try:\n    print(repr(s.recv(100)))\nexcept ConnectionResetError:\n    print(repr(b''))"
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, str(warm_home)], capture_output=True, text=True, timeout=30
        )
    finally:
        os.chmod(warm_home.parent, 0o700)
    assert done.stdout.strip() == "b''", done.stdout + done.stderr


def test_a_socket_folder_others_may_enter_is_not_used(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("MESH_ASK_DAEMON", "on")
    monkeypatch.setattr(warm.tempfile, "gettempdir", lambda: str(tmp_path))
    folder = tmp_path / f"meshwork-{os.getuid()}"
    folder.mkdir(mode=0o777)
    os.chmod(folder, 0o777)
    assert warm.socket_path() is None
    os.chmod(folder, 0o700)
    assert warm.socket_path() is not None
