"""Helpers for tests that run workers: in-process (fast, observable) or as real subprocesses."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.tasks import task_backends

from vtasks.drivers.base import Claim
from vtasks.execution import Executor
from vtasks.runtime.batches import BatchQueue
from vtasks.runtime.identity import process_id
from vtasks.runtime.threads import ThreadRunner
from vtasks.runtime.worker import Worker, WorkerSettings

ROOT = Path(__file__).resolve().parent.parent


def noop_claim(task_id: str) -> Claim:
    """A first-attempt claim of ``tests.tasks.noop``, for worker tests with a stand-in executor."""
    now = datetime.now(UTC)
    return Claim(
        task_id, "tests.tasks.noop", "default", 0, [], {}, "default", None, now, now, now, 1, 1,
        ["p"], [],
    )  # fmt: skip


def work(
    alias: str, queues: Sequence[str] = ("default",), *, concurrency: int = 4, timeout: float = 60.0,
    batch_queues: Mapping[str, BatchQueue] | None = None, observer: Any = None, **settings: Any,
) -> Worker:  # fmt: skip
    """Run a burst worker in this process until the queues are empty; returns it for inspection.
    ``settings`` replace ``WorkerSettings`` fields (``loop_block_threshold=0.3``, say)."""
    return asyncio.run(
        asyncio.wait_for(
            _work(alias, queues, concurrency, batch_queues or {}, observer, settings), timeout
        )
    )


async def _work(
    alias: str, queues: Sequence[str], concurrency: int, batch_queues: Mapping[str, BatchQueue],
    observer: Any, overrides: Mapping[str, Any],
) -> Worker:  # fmt: skip
    driver = task_backends[alias].create_driver()
    threads = ThreadRunner(concurrency)
    settings = WorkerSettings(**{
        "queues": tuple(queues), "concurrency": concurrency, "burst": True,
        "heartbeat_interval": 0.2, "alive_threshold": 1.5, "shutdown_timeout": 5,
        "idle_wait": 0.1, "batch_queues": batch_queues, **overrides,
    })  # fmt: skip
    await driver.open()
    worker = Worker(driver, Executor(threads), settings, process_id("test"), observer)
    try:
        await worker.run()
    finally:
        await driver.close()
        threads.shutdown(wait=False)
    return worker


def process_table() -> str:
    """Every process's command line, as ``ps -ef`` shows it to any user of the machine."""
    lines = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, UnicodeDecodeError):
            continue  # gone meanwhile, or not ours to read
    return "\n".join(lines)


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def vtasks_command(*args: str) -> list[str]:
    """The ``vtasks`` command line for the test settings, with ``args`` after it."""
    return [sys.executable, "-m", "vtasks.cli.main", "--settings", "tests.settings",
            "--pythonpath", str(ROOT), *args]  # fmt: skip


def spawn_worker(alias: str, *args: str, log: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``vtasks worker`` for ``alias`` as a real process (same settings and databases)."""
    cmd = [sys.executable, "-m", "vtasks.cli.main", "--settings", "tests.settings",
           "--pythonpath", str(ROOT), "worker", "--backend", alias, *args]  # fmt: skip
    if log is None:
        return subprocess.Popen(
            cmd, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
    with open(log, "ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(cmd, env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT)


def wait_for(
    predicate, timeout: float = 30.0, interval: float = 0.05, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def lines(path: Path) -> list[str]:
    """The tokens of a log that tasks append to, one line each (whole lines only)."""
    return [token for line in complete_lines(path) for token in line.split()]


def complete_lines(path: Path) -> list[str]:
    """The lines of a log other processes append to, without a last line still being written:
    an append is atomic for other appenders, not for a reader (it can see half of it)."""
    if not path.exists():
        return []
    text = path.read_text()
    return text[: text.rfind("\n") + 1].splitlines()
