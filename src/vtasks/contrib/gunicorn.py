"""Gunicorn hooks: an embedded vtasks worker in each Gunicorn worker process (dj_queue's).

In ``gunicorn.conf.py``::

    from vtasks.contrib.gunicorn import post_fork, worker_exit

or, to choose what the embedded workers serve::

    from vtasks.contrib.gunicorn import hooks

    post_fork, worker_exit = hooks(queues=["default", "email*"], concurrency=4)

``post_fork`` starts a thread in the new Gunicorn worker that waits for Django's app registry (the
WSGI application loads it just after the hook, or before the fork with ``preload_app``), then runs
a vtasks ``Worker`` on an event loop of its own: sync tasks on its thread pool, async ones on that
loop, beside the requests Gunicorn serves. ``worker_exit`` (in the same process, as it exits after
a SIGTERM, ``max_requests`` or a reload) stops claiming, lets running tasks finish up to
``VTASKS_SHUTDOWN_TIMEOUT`` and hands the rest back. Gunicorn kills a worker that takes longer
than its ``graceful_timeout`` (30 s by default): set it above the shutdown timeout.

Options left out are read once Django is set up: ``VTASKS_BACKEND``, ``VTASKS_QUEUES`` and
``VTASKS_CONCURRENCY`` (environment over Django settings over the defaults). Metrics are off unless
``metrics=True``: each Gunicorn worker would have its own default registry.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

logger = logging.getLogger("vtasks.gunicorn")

Hook = Callable[[Any, Any], None]

#: Seconds the embedded worker waits for Django's app registry before giving up.
READY_TIMEOUT = 60.0
#: Seconds ``worker_exit`` waits beyond the shutdown timeout for the thread to end.
EXIT_MARGIN = 5.0


class EmbeddedThread:
    """One Gunicorn worker's embedded vtasks worker, on its own loop in a daemon thread."""

    def __init__(
        self, *, backend: str | None = None, queues: Sequence[str] | None = None,
        concurrency: int | None = None, metrics: bool = False,
    ) -> None:  # fmt: skip
        self.backend = backend
        self.queues = tuple(queues) if queues is not None else None
        self.concurrency = concurrency
        self.metrics = metrics
        self.worker: Any = None
        self.shutdown_timeout = 30.0
        self._stop_requested = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="vtasks-embedded", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the worker to drain and wait for it (up to the shutdown timeout and a margin)."""
        self._stop_requested.set()
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(stopping.set)
            except RuntimeError:  # the loop closed meanwhile: the thread is ending anyway
                pass
        if self._thread.is_alive():
            self._thread.join(self.shutdown_timeout + EXIT_MARGIN)
            if self._thread.is_alive():
                logger.error("vtasks: the embedded worker did not stop in time")

    def _run(self) -> None:
        try:
            if self._django_ready():
                asyncio.run(self._main())
        except Exception:
            logger.exception("vtasks: the embedded worker stopped")
        finally:
            from django.db import connections

            connections.close_all()  # this thread's own connections

    def _django_ready(self) -> bool:
        from django.apps import apps

        deadline = time.monotonic() + READY_TIMEOUT
        while not apps.ready:
            if self._stop_requested.is_set():
                return False
            if time.monotonic() > deadline:
                logger.error(
                    "vtasks: Django was not set up %.0f s after the fork: no embedded worker",
                    READY_TIMEOUT,
                )
                return False
            time.sleep(0.05)
        return True

    async def _main(self) -> None:
        from vtasks.config import env
        from vtasks.embedded import EmbeddedWorker

        backend = self.backend or env.value(env.BACKEND_SETTING) or "default"
        queues = self.queues or tuple(env.value(env.QUEUES_SETTING))
        concurrency = self.concurrency or env.value(env.CONCURRENCY_SETTING)
        self.shutdown_timeout = env.runtime_value(env.SHUTDOWN_TIMEOUT, env.django_settings())
        self._stopping = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        embedded = EmbeddedWorker(backend, queues, concurrency, self.metrics)
        try:
            await embedded.start()
        except Exception:
            logger.exception("vtasks: the embedded worker could not start")
            return
        self.worker = embedded.worker
        if not self._stop_requested.is_set():  # set before the loop was known: no wake-up came
            await self._stopping.wait()
        await embedded.stop()


def hooks(
    *, backend: str | None = None, queues: Sequence[str] | None = None,
    concurrency: int | None = None, metrics: bool = False,
) -> tuple[Hook, Hook]:  # fmt: skip
    """``post_fork`` and ``worker_exit`` hooks for ``gunicorn.conf.py`` with these options."""
    current: list[EmbeddedThread] = []

    def post_fork(server: Any, worker: Any) -> None:
        embedded = EmbeddedThread(
            backend=backend, queues=queues, concurrency=concurrency, metrics=metrics
        )
        current[:] = [embedded]
        embedded.start()

    def worker_exit(server: Any, worker: Any) -> None:
        while current:
            current.pop().stop()

    return post_fork, worker_exit


post_fork, worker_exit = hooks()
