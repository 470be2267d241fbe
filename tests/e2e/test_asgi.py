"""An embedded worker under a real ASGI server (uvicorn): it runs what the web side enqueues, and
drains on SIGTERM/SIGINT before the server exits."""

from __future__ import annotations

import asyncio
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
from asgiref.sync import sync_to_async

from tests import storage
from tests.asgi_urls import BACKEND_ENV
from tests.conftest import storage_for
from tests.helpers import ROOT, lines, wait_for

pytest.importorskip("uvicorn")


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
    cmd = [sys.executable, "-m", "uvicorn", "tests.asgi_urls:make_application", "--factory",
           "--host", "127.0.0.1", "--port", str(port), "--lifespan", "on", "--log-level", "info"]  # fmt: skip
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ, BACKEND_ENV: alias}, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip


def _post(port: int, **params: object) -> str:
    url = f"http://127.0.0.1:{port}/enqueue/?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10) as reply:
        return json.loads(reply.read())["id"]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["term", "int"])
def test_the_embedded_worker_runs_web_enqueues_and_drains(web_alias, tmp_path, stop_signal):
    out, log, port = tmp_path / "done", tmp_path / "server.log", _free_port()
    server = _serve(web_alias, port, log)
    try:
        wait_for(lambda: storage.process_count(web_alias) == 1, timeout=30, what="the worker row")
        # The server binds its socket only after the lifespan startup (the worker's row) is done.
        wait_for(lambda: _listening(port), timeout=30, what="the server's socket")
        quick = _post(port, file=out, token="quick")
        wait_for(lambda: lines(out) == ["quick"], timeout=15, what="the enqueued task to run")
        wait_for(lambda: storage.status(web_alias, quick) == "SUCCESSFUL", what="its result")
        slow = _post(port, file=out, token="slow", seconds=1.5)
        wait_for(lambda: storage.status(web_alias, slow) == "RUNNING", what="the slow task")
        server.send_signal(stop_signal)
        # uvicorn re-raises the signal once shut down, so the exit status names it.
        assert server.wait(timeout=30) in (0, -stop_signal), log.read_text()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    # The in-flight task finished before the server exited, and the worker deregistered.
    assert lines(out) == ["quick", "slow"]
    assert storage.status(web_alias, slow) == "SUCCESSFUL"
    assert storage.process_count(web_alias) == 0
    text = log.read_text()
    assert "Application startup complete" in text and "Application shutdown complete" in text
    assert "Traceback" not in text


PROBE = """
import sys, django
django.setup()
import vtasks.asgi, vtasks.compat.celery, vtasks.backends.immediate
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "uvloop"
                or m.startswith(("vtasks.runtime", "vtasks.serve", "vtasks.execution")))
print(",".join(loaded))
"""


def test_importing_the_asgi_and_compat_modules_stays_light():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


class LifespanApp:
    """A wrapped app that speaks the lifespan protocol itself (as Starlette apps do)."""

    def __init__(self, fail_startup: bool = False) -> None:
        self.fail_startup = fail_startup
        self.events: list[str] = []

    async def __call__(self, scope, receive, send) -> None:
        assert scope["type"] == "lifespan"
        while True:
            message = await receive()
            self.events.append(message["type"])
            if message["type"] == "lifespan.startup":
                if self.fail_startup:
                    await send({"type": "lifespan.startup.failed", "message": "no"})
                    return
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return


@sync_to_async
def _process_count(alias: str) -> int:
    """The process table's size, read from a helper thread whose connection is then closed (an
    unclosed SQLite connection warns when the thread's objects are collected)."""
    from django.db import connections

    try:
        return storage.process_count(alias)
    finally:
        connections.close_all()


async def _drive(app, messages: list[str]) -> list[dict]:
    """Play the server's side of the lifespan: send ``messages`` one per reply."""
    inbox: asyncio.Queue = asyncio.Queue()
    replies: list[dict] = []
    for message in messages:
        inbox.put_nowait({"type": message})

    async def send(message: dict) -> None:
        replies.append(message)

    await asyncio.wait_for(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, send), 30
    )
    return replies


async def test_a_wrapped_app_keeps_its_lifespan(web_alias):
    from vtasks.asgi import get_worker_application

    inner = LifespanApp()
    app = get_worker_application(inner, backend=web_alias)
    count = _process_count
    inbox: asyncio.Queue = asyncio.Queue()
    replies: list[dict] = []

    async def send(message: dict) -> None:
        replies.append(message)

    serving = asyncio.create_task(app({"type": "lifespan"}, inbox.get, send))
    await inbox.put({"type": "lifespan.startup"})
    while not replies:
        await asyncio.sleep(0.01)
    assert replies == [{"type": "lifespan.startup.complete"}]
    assert inner.events == ["lifespan.startup"]
    # The worker registers from its own task, just after the startup is acknowledged.
    for _ in range(200):
        if await count(web_alias) == 1:
            break
        await asyncio.sleep(0.05)
    assert await count(web_alias) == 1
    await inbox.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(serving, 30)
    assert replies[-1] == {"type": "lifespan.shutdown.complete"}
    assert inner.events == ["lifespan.startup", "lifespan.shutdown"]
    assert await count(web_alias) == 0


async def test_a_failed_inner_startup_stops_the_worker(web_alias):
    from vtasks.asgi import get_worker_application

    app = get_worker_application(LifespanApp(fail_startup=True), backend=web_alias)
    replies = await _drive(app, ["lifespan.startup"])
    assert replies == [{"type": "lifespan.startup.failed", "message": "no"}]
    assert await _process_count(web_alias) == 0


async def test_a_worker_that_cannot_start_fails_the_startup():
    from vtasks.asgi import get_worker_application

    app = get_worker_application(LifespanApp(), backend="no-such-alias")
    replies = await _drive(app, ["lifespan.startup"])
    assert replies[0]["type"] == "lifespan.startup.failed"
    assert "no-such-alias" in replies[0]["message"]
