"""``mode: async``: the whole topology in one process, every role an asyncio task (small machines).

Beside the default ``fork`` mode, where the supervisor forks a child per worker process. Here each
worker process of each pool is a ``Worker`` on one event loop with its own driver and thread pool
(the same process-table rows, one per worker, so recovery and ``vtasks status`` work as before);
the scheduler runs its loop in a thread; ``metrics:`` is served from this process's own registry.
A worker that stops by itself (fenced out, its store gone at start) is started again after a
back-off (0.5 s doubling up to 30 s). SIGTERM/SIGINT drain every worker for ``shutdown_timeout``;
SIGHUP is logged and ignored: a reload needs ``mode: fork`` (or a restart). What the mode gives up:
one crashing task that takes the process down takes every role with it, and CPU-bound sync tasks
share one interpreter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Sequence
from typing import Any

from vtasks.config import env
from vtasks.config.models import Topology
from vtasks.runtime import exitcodes
from vtasks.runtime.topology import ChildSpec

logger = logging.getLogger("vtasks.supervisor")

BACKOFF_BASE, BACKOFF_CAP = 0.5, 30.0


def run_async(specs: Sequence[ChildSpec], topology: Topology, *, burst: bool = False) -> int:
    """Run ``specs`` (workers and the scheduler) in this process until SIGTERM/SIGINT (or, with
    ``burst``, until every worker found its queues empty); returns an exit code."""
    with contextlib.ExitStack() as stack:
        observer = None
        metrics = topology.metrics
        if metrics is not None and not burst:
            from vtasks.ops.metrics import LoneEndpoint

            endpoint = LoneEndpoint(
                topology.backend, metrics.address, metrics.port,
                interval=topology.heartbeat_interval, max_age=topology.alive_threshold,
            )  # fmt: skip
            observer = stack.enter_context(endpoint).observer
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:  # pragma: no cover - uvloop is a dependency; Windows lacks it
            runner = asyncio.run
        return runner(_main(specs, observer, burst, topology.health_file))


async def _main(
    specs: Sequence[ChildSpec], observer: Any, burst: bool, health_file: Any
) -> int:  # fmt: skip
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    loop.add_signal_handler(
        signal.SIGHUP, lambda: logger.warning("vtasks: SIGHUP ignored: reloads need mode: fork")
    )
    roles = [_WorkerRole(spec, observer, stopping) for spec in specs if spec.kind == "worker"]
    scheduler = next((spec for spec in specs if spec.kind == "scheduler"), None)
    jobs = [asyncio.create_task(role.keep_running(), name=role.spec.name) for role in roles]
    if scheduler is not None:
        jobs.append(asyncio.create_task(_schedule(scheduler, stopping), name="scheduler"))
    beat = None
    if health_file:
        from vtasks.serve import _health_beat

        beat = asyncio.create_task(_health_beat(str(health_file), 1.0))
    logger.info(
        "vtasks: async mode: %d worker(s)%s in process %d",
        len(roles), " and the scheduler" if scheduler else "", os.getpid(),
    )  # fmt: skip
    try:
        if burst:
            await asyncio.gather(*jobs)
        else:
            await stopping.wait()
            for role in roles:
                role.stop()
            await asyncio.gather(*jobs)
    finally:
        stopping.set()
        if beat is not None:
            beat.cancel()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
    codes = [job.result() for job in jobs]
    return next((code for code in codes if code), exitcodes.OK)


class _WorkerRole:
    """One worker process of a pool, as a task: built like a forked child's, restarted on exit."""

    def __init__(self, spec: ChildSpec, observer: Any, stopping: asyncio.Event) -> None:
        self.spec = spec
        self.observer = observer
        self.stopping = stopping
        self.worker: Any = None

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()

    async def keep_running(self) -> int:
        delay = BACKOFF_BASE
        while True:
            try:
                code = await self._run_once()
            except Exception:  # the store is down at start, say: try again after the back-off
                logger.exception("vtasks: async worker %s failed", self.spec.name)
                code = exitcodes.CRASH
            if self.stopping.is_set() or self.spec.worker.burst or code == exitcodes.BOOT_ERROR:
                return code
            logger.warning(
                "vtasks: async worker %s stopped (exit code %d); restarting in %.1f s",
                self.spec.name, code, delay,
            )  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            if self.stopping.is_set():
                return exitcodes.OK
            delay = min(BACKOFF_CAP, delay * 2)

    def _names(self) -> tuple[str, str]:
        return self.spec.name, self.spec.backend

    async def _run_once(self) -> int:
        from vtasks.execution import Executor
        from vtasks.launch import with_setting_batches
        from vtasks.runtime.identity import process_id
        from vtasks.runtime.threads import ThreadRunner
        from vtasks.runtime.worker import Worker
        from vtasks.serve import build_driver

        settings = with_setting_batches(self.spec.worker)
        try:
            driver = build_driver(self.spec.backend)
        except Exception:
            # As a forked child's boot error halts the supervisor: no restart loop on bad config.
            logger.exception("vtasks: %s cannot build the %r backend's driver", *self._names())
            self.stopping.set()
            return exitcodes.BOOT_ERROR
        threads = ThreadRunner(settings.concurrency)
        executor = Executor(threads)
        prefix = os.environ.get(env.WORKER_ID) or f"{socket.gethostname()}:{os.getpid()}"
        await driver.open()
        worker = Worker(
            driver, executor, settings, process_id(f"{prefix}:{self.spec.name}"), self.observer
        )
        self.worker = worker
        if self.stopping.is_set():
            worker.stop()
        try:
            return await worker.run()
        finally:
            self.worker = None
            await driver.close()
            threads.shutdown(wait=executor.abandoned_threads + worker.handed_back == 0)


async def _schedule(spec: ChildSpec, stopping: asyncio.Event) -> int:
    """The scheduler's (synchronous) loop in a thread, stopped within its tick once asked."""
    from vtasks.scheduler import scheduler_loop

    stop = threading.Event()
    loop = scheduler_loop(spec.backend, spec.schedules, stop.is_set)

    def run() -> int:
        from django.db import connections

        try:
            return int(loop.run())
        finally:
            connections.close_all()  # this thread's own connections

    job = asyncio.create_task(asyncio.to_thread(run))
    asked = asyncio.create_task(stopping.wait())
    await asyncio.wait([job, asked], return_when=asyncio.FIRST_COMPLETED)
    asked.cancel()
    stop.set()
    return await job
