"""A worker embedded in a web server's process: the ASGI lifespan (``vtasks.asgi``) and the
Gunicorn hooks (``vtasks.contrib.gunicorn``) start and drain it.

The runtime is imported inside ``start``, so importing this module stays as light as enqueueing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

logger = logging.getLogger("vtasks.embedded")


class EmbeddedWorker:
    """A ``Worker`` wired like ``vtasks.serve`` but on the running loop, without signal handlers
    (the host server owns SIGTERM/SIGINT: the ASGI lifespan or a Gunicorn hook calls ``stop``)."""

    def __init__(
        self, backend: str, queues: tuple[str, ...], concurrency: int, metrics: bool | None = None
    ) -> None:
        self.backend = backend
        self.queues = queues
        self.concurrency = concurrency
        self.metrics = metrics
        self.worker: Any = None
        self._sampler: Any = None
        self._parts: Any = None
        self._job: asyncio.Task[int] | None = None

    async def start(self) -> None:
        from asgiref.sync import sync_to_async

        from vtasks.execution import Executor
        from vtasks.runtime.identity import process_id
        from vtasks.runtime.threads import ThreadRunner
        from vtasks.runtime.worker import Worker
        from vtasks.serve import build_driver, worker_settings

        wsettings = worker_settings(self.queues, self.concurrency, burst=False)
        # Building the driver reads Django's settings and connections: off the loop, as Django
        # wants for anything that may touch the database layer.
        driver = await sync_to_async(build_driver, thread_sensitive=False)(self.backend)
        threads = ThreadRunner(self.concurrency)
        executor = Executor(threads)
        await driver.open()
        self.worker = Worker(driver, executor, wsettings, process_id(), self._observer(wsettings))
        self._parts = (driver, threads, executor)
        self._job = asyncio.create_task(self.worker.run(), name="vtasks-embedded-worker")
        self._job.add_done_callback(_report_exit)
        logger.info(
            "vtasks: embedded worker %s serving %s (concurrency %d)",
            self.worker.process_id, list(self.queues), self.concurrency,
        )  # fmt: skip

    def _observer(self, wsettings: Any) -> Any:
        """The worker's metrics in the default registry (depths sampled beside it), and the
        task log when ``VTASKS_LOG_TASKS`` asks for it."""
        from vtasks.config import env
        from vtasks.observability import tasklog

        logs = tasklog.TaskLog() if env.value(env.LOG_TASKS_SETTING) else None
        return tasklog.combine(self._metrics(wsettings), logs)

    def _metrics(self, wsettings: Any) -> Any:
        from vtasks.observability import metrics

        if self.metrics is False or (self.metrics is None and not metrics.available()):
            return None
        metrics.require()
        from vtasks.ops.metrics import Sampler

        metrics.count_enqueued()
        self._sampler = Sampler(self.backend, wsettings.heartbeat_interval).start()
        return metrics.WorkerMetrics()

    async def stop(self) -> None:
        """Stop claiming, drain (``Worker`` waits up to its shutdown timeout), close the driver."""
        if self._sampler is not None:
            from vtasks.observability.metrics import stop_counting_enqueued

            stop_counting_enqueued()
            await asyncio.to_thread(self._sampler.stop)
            self._sampler = None
        if self._job is None:
            return
        driver, threads, executor = self._parts
        self.worker.stop()
        try:
            await asyncio.shield(self._job)
        except Exception:
            pass  # Logged by _report_exit.
        finally:
            await driver.close()
            threads.shutdown(wait=executor.abandoned_threads + self.worker.handed_back == 0)
            self._job = None
        logger.info(
            "vtasks: embedded worker %s stopped after %d task(s)",
            self.worker.process_id, self.worker.processed,
        )  # fmt: skip


def _report_exit(job: asyncio.Task[int]) -> None:
    if job.cancelled():
        return
    exc = job.exception()
    if exc is not None:
        logger.error("vtasks: the embedded worker crashed", exc_info=exc)
    elif job.result():
        logger.error("vtasks: the embedded worker stopped by itself (exit code %d)", job.result())
