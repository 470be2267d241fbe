"""Wire a lone worker process: Django backend -> driver, executor, the asyncio ``Worker`` on uvloop.

Shared by ``vtasks worker`` and ``manage.py runworker``. Django must be set up before calling.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.tasks import task_backends

from vtasks.config import env
from vtasks.execution import Executor
from vtasks.runtime.identity import process_id
from vtasks.runtime.threads import ThreadRunner
from vtasks.runtime.worker import Worker, WorkerSettings

logger = logging.getLogger("vtasks.worker")


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """The worker's flags, shared with ``manage.py runworker``."""
    parser.add_argument("--queue", "-q", action="append", dest="queues", metavar="NAME",
                        help="a queue to serve, repeatable, in claim order (default: default)")  # fmt: skip
    parser.add_argument(
        "--concurrency", "-c", type=int, default=10, help="tasks run at once (default 10)"
    )
    parser.add_argument("--backend", default="default", help="the TASKS alias (default: default)")
    parser.add_argument("--burst", action="store_true", help="exit 0 once the queues are empty")
    parser.add_argument("--id", dest="worker_id", help="worker id prefix (default host:pid)")


def worker_settings(queues: Sequence[str], concurrency: int, burst: bool) -> WorkerSettings:
    return WorkerSettings(
        queues=tuple(queues),
        concurrency=concurrency,
        burst=burst,
        heartbeat_interval=env.runtime_value(env.HEARTBEAT_INTERVAL, settings),
        alive_threshold=env.runtime_value(env.ALIVE_THRESHOLD, settings),
        shutdown_timeout=env.runtime_value(env.SHUTDOWN_TIMEOUT, settings),
    )


def run_worker(
    *, backend: str = "default", queues: Sequence[str] = ("default",), concurrency: int = 10,
    burst: bool = False, worker_id: str | None = None,
) -> int:  # fmt: skip
    """Run one worker process until SIGTERM/SIGINT (or empty queues with ``burst``)."""
    wsettings = worker_settings(queues, concurrency, burst)
    pid = process_id(worker_id or os.environ.get(env.WORKER_ID))
    return serve_driver(build_driver(backend), wsettings, pid)


def build_driver(backend_alias: str) -> Any:
    """The backend's worker driver, built without I/O (connections open later, on the loop)."""
    return task_backends[backend_alias].create_driver()


def serve_driver(driver: Any, wsettings: WorkerSettings, pid: str) -> int:
    """Run a ``Worker`` on ``driver`` in a fresh uvloop until stopped; returns its exit code."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency; Windows lacks it
        runner = asyncio.run
    return runner(_serve(driver, wsettings, pid))


async def _serve(driver: Any, wsettings: WorkerSettings, pid: str) -> int:
    threads = ThreadRunner(wsettings.concurrency)
    executor = Executor(threads)
    await driver.open()
    worker = Worker(driver, executor, wsettings, pid)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    logger.info(
        "vtasks: worker %s serving %s (concurrency %d)",
        pid,
        list(wsettings.queues),
        wsettings.concurrency,
    )
    try:
        code = await worker.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await driver.close()
    # Timed-out or handed-back sync tasks may still run: their daemon threads are not waited for.
    threads.shutdown(wait=executor.abandoned_threads + worker.handed_back == 0)
    logger.info("vtasks: worker %s stopped after %d task(s)", pid, worker.processed)
    return code
