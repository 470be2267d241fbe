"""Wire a lone worker process: Django backend -> driver, executor, the asyncio ``Worker`` on uvloop.

Shared by ``vtasks worker`` and ``manage.py runworker``. Django must be set up before calling.
Each flag left out falls back to its ``VTASKS_*`` environment variable, then to the Django setting
of the same name, then to django-vtasks' default (``vtasks.config.env``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.tasks import task_backends

from vtasks.config import env
from vtasks.core import heap
from vtasks.core.errors import ConfigError
from vtasks.execution import Executor
from vtasks.observability import health
from vtasks.runtime import batches
from vtasks.runtime.batches import parse_batch_queues
from vtasks.runtime.identity import process_id
from vtasks.runtime.threads import ThreadRunner
from vtasks.runtime.worker import Worker
from vtasks.runtime.worker_settings import Observer, WorkerSettings

logger = logging.getLogger("vtasks.worker")


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    """The worker's flags, shared with ``manage.py runworker`` (django-vtasks' names)."""
    parser.add_argument("--queue", "-q", action="append", dest="queues", metavar="NAME",
                        help="a queue to serve, repeatable, in claim order; \"*\" is every "
                        "queue, \"email*\" every queue starting with email (default: "
                        "VTASKS_QUEUES, else default)")  # fmt: skip
    parser.add_argument("--concurrency", "-c", type=int,
                        help="tasks run at once (default: VTASKS_CONCURRENCY, else 20)")  # fmt: skip
    parser.add_argument("--backend", help="the TASKS alias (default: VTASKS_BACKEND, else default)")
    parser.add_argument("--burst", action="store_true", help="exit 0 once the queues are empty")
    parser.add_argument("--id", dest="worker_id",
                        help="worker id prefix (default: VTASKS_WORKER_ID, else host:pid)")  # fmt: skip
    parser.add_argument("--health-check-file", dest="health_file", metavar="PATH",
                        help="rewrite this file every heartbeat, for liveness probes (default: "
                        "VTASKS_HEALTH_CHECK_FILE)")  # fmt: skip
    parser.add_argument("--metrics-port", type=int, metavar="PORT",
                        help="serve /metrics and /healthz on this port (needs vtasks[metrics]; "
                        "default: VTASKS_METRICS_PORT, else none)")  # fmt: skip
    parser.add_argument("--metrics-address", default="127.0.0.1", metavar="ADDRESS",
                        help="the address --metrics-port binds (default: 127.0.0.1)")  # fmt: skip
    parser.add_argument("--scheduler", action="store_true",
                        help="also run the scheduler in this process (VTASKS_RUN_SCHEDULER=false "
                        "turns it off)")  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerOptions:
    """A lone worker's resolved options: flags over environment over settings over defaults."""

    backend: str
    queues: tuple[str, ...]
    concurrency: int
    burst: bool = False
    worker_id: str | None = None
    health_file: str | None = None
    scheduler: bool = False
    metrics_port: int | None = None
    metrics_address: str = "127.0.0.1"


def worker_options(
    flags: Mapping[str, Any], dj_settings: Any = None, environ: Mapping[str, str] = os.environ
) -> WorkerOptions:
    """Resolve the worker's options; ``flags`` maps option names to values, ``None`` = not given."""

    def pick(flag: str, setting: env.Setting) -> Any:
        given = flags.get(flag)
        if given is not None:
            return setting.parse(given, f"--{flag.replace('_', '-')}")
        return env.value(setting, dj_settings or settings, environ)

    concurrency = pick("concurrency", env.CONCURRENCY_SETTING)
    if concurrency < 1:  # pragma: no cover - the parser already refuses it
        raise ConfigError(f"--concurrency: must be >= 1, got {concurrency}")
    run_scheduler = bool(flags.get("scheduler")) and env.value(
        env.RUN_SCHEDULER_SETTING, dj_settings or settings, environ
    )
    return WorkerOptions(
        backend=pick("backend", env.BACKEND_SETTING) or "default",
        queues=tuple(pick("queues", env.QUEUES_SETTING)),
        concurrency=concurrency, burst=bool(flags.get("burst")),
        worker_id=pick("worker_id", env.WORKER_ID_SETTING),
        health_file=pick("health_file", env.HEALTH_CHECK_FILE_SETTING), scheduler=run_scheduler,
        metrics_port=pick("metrics_port", env.METRICS_PORT_SETTING),
        metrics_address=flags.get("metrics_address") or "127.0.0.1",
    )  # fmt: skip


def worker_settings(queues: Sequence[str], concurrency: int, burst: bool) -> WorkerSettings:
    return WorkerSettings(
        queues=tuple(queues),
        concurrency=concurrency,
        burst=burst,
        heartbeat_interval=env.runtime_value(env.HEARTBEAT_INTERVAL, settings),
        alive_threshold=env.runtime_value(env.ALIVE_THRESHOLD, settings),
        shutdown_timeout=env.runtime_value(env.SHUTDOWN_TIMEOUT, settings),
        loop_block_threshold=env.runtime_value(env.LOOP_BLOCK_THRESHOLD, settings),
        batch_queues=parse_batch_queues(getattr(settings, batches.SETTING, None)),
    )


def run_worker_options(options: WorkerOptions) -> int:
    """Run the worker ``options`` describe (and the scheduler beside it when asked)."""
    return run_worker(
        backend=options.backend, queues=options.queues, concurrency=options.concurrency,
        burst=options.burst, worker_id=options.worker_id, health_file=options.health_file,
        scheduler=options.scheduler, metrics_port=options.metrics_port,
        metrics_address=options.metrics_address,
    )  # fmt: skip


def run_worker(
    *, backend: str = "default", queues: Sequence[str] = ("default",), concurrency: int = 20,
    burst: bool = False, worker_id: str | None = None, health_file: str | None = None,
    scheduler: bool = False, metrics_port: int | None = None, metrics_address: str = "127.0.0.1",
) -> int:  # fmt: skip
    """Run one worker process until SIGTERM/SIGINT (or empty queues with ``burst``)."""
    wsettings = worker_settings(queues, concurrency, burst)
    pid = process_id(worker_id or env.value(env.WORKER_ID_SETTING, settings))
    driver = build_driver(backend)
    with contextlib.ExitStack() as stack:
        observer = None
        if metrics_port is not None:
            from vtasks.ops.metrics import LoneEndpoint

            endpoint = LoneEndpoint(
                backend, metrics_address, metrics_port, interval=wsettings.heartbeat_interval,
                health_file=health_file, max_age=wsettings.alive_threshold,
            )  # fmt: skip
            observer = stack.enter_context(endpoint).observer
        if env.value(env.LOG_TASKS_SETTING, settings):
            from vtasks.observability import tasklog

            tasklog.log_enqueued()
            observer = tasklog.combine(observer, tasklog.TaskLog())
        if scheduler:
            from vtasks.sidecar import SchedulerThread

            stack.enter_context(SchedulerThread(backend))
        return serve_driver(driver, wsettings, pid, health_file=health_file, observer=observer)


def build_driver(backend_alias: str) -> Any:
    """The backend's worker driver, built without I/O (connections open later, on the loop)."""
    return task_backends[backend_alias].create_driver()


def serve_driver(
    driver: Any, wsettings: WorkerSettings, pid: str, *, health_file: str | None = None,
    observer: Observer | None = None,
) -> int:  # fmt: skip
    """Run a ``Worker`` on ``driver`` in a fresh uvloop until stopped; returns its exit code."""
    heap.settle()  # start-up is over (see ``core.heap``)
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency; Windows lacks it
        runner = asyncio.run
    return runner(_serve(driver, wsettings, pid, health_file, observer))


async def _serve(
    driver: Any, wsettings: WorkerSettings, pid: str, health_file: str | None = None,
    observer: Observer | None = None,
) -> int:  # fmt: skip
    threads = ThreadRunner(wsettings.concurrency)
    executor = Executor(threads)
    await driver.open()
    worker = Worker(driver, executor, wsettings, pid, observer)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, worker.stop)
    logger.info(
        "vtasks: worker %s serving %s (concurrency %d)",
        pid,
        list(wsettings.queues),
        wsettings.concurrency,
    )
    beat = (
        asyncio.create_task(_health_beat(health_file, wsettings.heartbeat_interval))
        if health_file
        else None
    )
    try:
        code = await worker.run()
    finally:
        if beat is not None:
            beat.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await driver.close()
    # Timed-out or handed-back sync tasks may still run: their daemon threads are not waited for.
    threads.shutdown(wait=executor.abandoned_threads + worker.handed_back == 0)
    logger.info("vtasks: worker %s stopped after %d task(s)", pid, worker.processed)
    return code


async def _health_beat(path: str, interval: float) -> None:
    """Rewrite the health file every ``interval`` seconds while the worker runs.

    The same JSON the supervisor writes (``vtasks health`` can judge it), replaced atomically, so
    a probe that only checks the file's age (django-vtasks' ``stat -c %Y``) works too.
    """
    while True:
        try:
            health.write(path, health.Health(
                pid=os.getpid(), written_at=time.time(), children_expected=1, children_running=1,
            ))  # fmt: skip
        except OSError as exc:  # a full or read-only disk must not stop the worker
            logger.warning("vtasks: cannot write the health file %s: %s", path, exc)
        await asyncio.sleep(min(interval, 5.0))
