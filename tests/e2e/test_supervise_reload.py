"""The real ``vtasks supervise`` tree: SIGHUP reloads, the supervisor's row, sd_notify.

Run on every backend the supervisor serves (database and Valkey): what is asserted is read through
the backend's process table and the supervisor's log, never through one backend's tables.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from django.tasks import task_backends

from tests import storage, tasks
from tests.conftest import storage_for
from tests.helpers import lines, vtasks_command, wait_for

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(params=["default", "pg", "valkey"], ids=["sqlite", "postgres", "valkey"])
def alias(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from storage_for(request.param)


def write_topology(path: Path, alias: str, *, concurrency: int = 4, processes: int = 2) -> Path:
    path.write_text(
        textwrap.dedent(f"""\
            backend: {alias}
            shutdown_timeout: 3
            workers:
              - name: w
                queues: [default]
                concurrency: {concurrency}
                processes: {processes}
            """)
    )
    return path


@contextlib.contextmanager
def supervisor(config: Path, log: Path, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """``vtasks supervise`` in its own session; whatever survives the test is killed as a group."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            vtasks_command("supervise", "--config", str(config)),
            env={**os.environ, "VTASKS_LOG_LEVEL": "INFO", **env}, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=20)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def rows(alias: str, kind: str) -> list[dict[str, Any]]:
    return [row for row in task_backends[alias].processes() if row["kind"] == kind]


def worker_pids(alias: str) -> set[int]:
    return {row["pid"] for row in rows(alias, "worker")}


def concurrency_of(alias: str, process_id: str) -> int | None:
    row = storage.process_row(alias, process_id)
    return json.loads(row["meta"]).get("concurrency") if row else None


def since(log: Path, marker: str) -> list[str]:
    text = log.read_text()
    return text[text.rindex(marker) :].splitlines() if marker in text else []


def test_sighup_with_a_new_concurrency_rolls_the_children_while_tasks_complete(alias, tmp_path):
    config = write_topology(tmp_path / "vtasks.yml", alias, concurrency=4)
    log, out = tmp_path / "sup.log", tmp_path / "done"
    enqueued: list[str] = []
    feeding = threading.Event()
    feeding.set()

    def feed() -> None:  # a steady stream of tasks, before, during and after the reload
        try:
            while feeding.is_set():
                token = str(len(enqueued))
                tasks.record.using(backend=alias).enqueue(str(out), token)
                enqueued.append(token)
                time.sleep(0.02)
        finally:
            connections.close_all()  # this thread's own database connection

    with supervisor(config, log) as sup:
        wait_for(lambda: len(worker_pids(alias)) == 2, timeout=60, what="two workers")
        old = worker_pids(alias)
        feeder = threading.Thread(target=feed)
        feeder.start()
        try:
            wait_for(lambda: len(lines(out)) >= 10, timeout=30, what="tasks completing")
            write_topology(config, alias, concurrency=6)
            done_before = len(lines(out))
            sup.send_signal(signal.SIGHUP)
            fewest = 2

            def replaced() -> bool:
                nonlocal fewest
                current = rows(alias, "worker")
                fewest = min(fewest, len(current))
                return len(current) == 2 and not old & {row["pid"] for row in current}

            wait_for(replaced, timeout=60, interval=0.02, what="two new workers")
            done_during = len(lines(out)) - done_before
        finally:
            feeding.clear()
            feeder.join()
        assert fewest == 2  # never fewer than two registered workers: no gap in service
        assert done_during > 0  # tasks kept completing while the children were replaced
        new = rows(alias, "worker")
        assert [concurrency_of(alias, row["id"]) for row in new] == [6, 6]
        wait_for(lambda: len(lines(out)) >= len(enqueued), timeout=60, what="every task")
        assert sup.poll() is None
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(timeout=20) == 0
    assert sorted(lines(out), key=int) == enqueued  # none lost, none run twice
    # One at a time: each new child is up before the child it replaces is stopped, and the next
    # new child starts only then.
    events = [
        (m["what"], m["name"])
        for line in since(log, "SIGHUP: reloading")
        if (m := re.search(r"(?P<what>started|stopping) worker (?P<name>w\.\d)", line)
            or re.search(r"worker (?P<name>w\.\d) \(pid \d+\) is (?P<what>up)", line))
    ]  # fmt: skip
    assert events == [
        ("started", "w.1"), ("up", "w.1"), ("stopping", "w.1"),
        ("started", "w.2"), ("up", "w.2"), ("stopping", "w.2"),
    ]  # fmt: skip
    assert log.read_text().count("(concurrency 6)") == 2


def test_sighup_with_an_invalid_file_keeps_the_running_children(alias, tmp_path):
    config = write_topology(tmp_path / "vtasks.yml", alias)
    log, out = tmp_path / "sup.log", tmp_path / "done"
    with supervisor(config, log) as sup:
        wait_for(lambda: len(worker_pids(alias)) == 2, timeout=60, what="two workers")
        old = worker_pids(alias)
        config.write_text(config.read_text().replace("concurrency: 4", "concurrency: 0"))
        sup.send_signal(signal.SIGHUP)
        message = f"reload rejected: workers[0].concurrency: must be >= 1, got 0 ({config}:6)"
        wait_for(lambda: message in log.read_text(), timeout=30, what="the rejection")
        tasks.record.using(backend=alias).enqueue(str(out), "after")
        wait_for(lambda: lines(out) == ["after"], timeout=30, what="the old children to serve")
        assert worker_pids(alias) == old and sup.poll() is None
        assert "started worker" not in "\n".join(since(log, "SIGHUP: reloading"))
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(timeout=20) == 0


def test_the_supervisor_registers_and_heartbeats_its_own_row(alias, tmp_path):
    config = write_topology(tmp_path / "vtasks.yml", alias, processes=1)
    with supervisor(config, tmp_path / "sup.log") as sup:
        wait_for(lambda: rows(alias, "supervisor"), timeout=60, what="the supervisor's row")
        [row] = rows(alias, "supervisor")
        assert row["pid"] == sup.pid and row["hostname"] == socket.gethostname()
        assert row["started_at"] <= row["heartbeat_at"]
        wait_for(
            lambda: rows(alias, "supervisor")[0]["heartbeat_at"] > row["heartbeat_at"],
            timeout=10, what="a heartbeat",
        )  # fmt: skip
        status = subprocess.run(
            vtasks_command("status", "--backend", alias), capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
        assert f"supervisor {row['id']} pid={sup.pid}" in status.stdout, status.stderr
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(timeout=20) == 0
    assert rows(alias, "supervisor") == []  # removed on the way out


def test_systemd_notifications(alias, tmp_path):
    name = f"vtasks-e2e-{secrets.token_hex(4)}"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind("\0" + name)
    listener.settimeout(60)
    received: list[str] = []

    def until(field: str) -> None:
        while field not in received:
            received.extend(listener.recv(4096).decode().split("\n"))

    config = write_topology(tmp_path / "vtasks.yml", alias)
    env = {"NOTIFY_SOCKET": f"@{name}", "WATCHDOG_USEC": "1000000"}
    try:
        with supervisor(config, tmp_path / "sup.log", **env) as sup:
            until("READY=1")
            assert len(worker_pids(alias)) == 2  # READY=1 only once every child registered
            assert received.index("STATUS=2/2 child(ren) up") > received.index(
                "STATUS=0/2 child(ren) up"
            )
            received.clear()
            until("WATCHDOG=1")
            sup.send_signal(signal.SIGHUP)
            until("RELOADING=1")
            received.clear()
            until("READY=1")
            assert "STATUS=2/2 child(ren) up" in received
            sup.send_signal(signal.SIGTERM)
            until("STOPPING=1")
            assert sup.wait(timeout=20) == 0
    finally:
        listener.close()
