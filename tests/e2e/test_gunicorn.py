"""Embedded workers under a real Gunicorn (``vtasks.contrib.gunicorn``): each Gunicorn worker runs
what the WSGI view enqueues, and drains its in-flight task when Gunicorn stops."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import storage
from tests.conftest import storage_for
from tests.helpers import ROOT, lines, wait_for

pytest.importorskip("gunicorn")
pytestmark = pytest.mark.timeout(120)


@pytest.fixture(params=["default", "pg"], ids=["sqlite", "postgres"])
def web_alias(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from storage_for(request.param)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _serve(alias: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "gunicorn", "-c", "tests/gunicorn_conf.py", "--workers", "2",
           "--bind", f"127.0.0.1:{port}", "tests.wsgi:application"]  # fmt: skip
    environ = {**os.environ, "VTASKS_BACKEND": alias, "VTASKS_QUEUES": "default",
               "VTASKS_CONCURRENCY": "2", "VTASKS_LOG_LEVEL": "INFO"}  # fmt: skip
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=environ, stdout=out, stderr=subprocess.STDOUT)


def _post(port: int, **params: object) -> dict:
    url = f"http://127.0.0.1:{port}/enqueue/?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10) as reply:
        return json.loads(reply.read())


def test_each_gunicorn_worker_runs_web_enqueues_and_drains_at_exit(web_alias, tmp_path):
    out, log, port = tmp_path / "done", tmp_path / "server.log", _free_port()
    server = _serve(web_alias, port, log)
    try:
        wait_for(
            lambda: storage.process_count(web_alias) == 2, timeout=60, what="two embedded workers"
        )
        wait_for(lambda: _listening(port), timeout=30, what="Gunicorn's socket")
        ids = [_post(port, file=out, token=f"quick{n}")["id"] for n in range(6)]
        wait_for(lambda: len(lines(out)) == 6, timeout=30, what="the enqueued tasks to run")
        assert sorted(lines(out)) == [f"quick{n}" for n in range(6)]
        wait_for(
            lambda: all(storage.status(web_alias, i) == "SUCCESSFUL" for i in ids),
            what="their results",
        )
        slow = _post(port, file=out, token="slow", seconds=1.5)["id"]
        wait_for(lambda: storage.status(web_alias, slow) == "RUNNING", what="the slow task")
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=60) == 0, log.read_text()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    # The in-flight task finished before its Gunicorn worker exited; both workers deregistered.
    assert lines(out)[-1] == "slow"
    assert storage.status(web_alias, slow) == "SUCCESSFUL"
    assert storage.process_count(web_alias) == 0
    text = log.read_text()
    assert text.count("stopped after") == 2, text
    assert "Traceback" not in text, text
