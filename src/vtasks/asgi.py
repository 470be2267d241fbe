"""Run a vtasks worker inside the ASGI server's own process and event loop.

For small deployments that want one process: ``application = get_worker_application(
get_asgi_application(), queues=("default",))`` under uvicorn (or any server speaking the ASGI
``lifespan`` protocol). HTTP and websocket scopes go straight to the Django app. At lifespan
startup the worker's driver opens on the server's loop and the worker starts claiming (sync tasks
on its own thread pool, async tasks on the server's loop); at shutdown it stops claiming, lets
running tasks finish up to ``VTASKS_SHUTDOWN_TIMEOUT``, hands the rest back and closes the driver
before the server is told the shutdown is complete.

With prometheus-client installed (``metrics=None``, the default) or ``metrics=True``, the worker's
``vtasks_`` metrics and this process's enqueues are recorded in prometheus-client's default
registry, which the host application exposes as it does its own metrics; queue depths and the
process table are sampled there too, on a thread, every heartbeat interval.

The runtime is imported inside the lifespan handler, so importing this module (the web process's
``asgi.py``) stays as light as enqueueing: no runtime, uvloop or driver until the server starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from vtasks.embedded import EmbeddedWorker

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger("vtasks.asgi")


def get_worker_application(
    django_asgi_app: ASGIApp,
    *,
    backend: str = "default",
    queues: Sequence[str] = ("default",),
    concurrency: int = 10,
    metrics: bool | None = None,
) -> ASGIApp:
    """Wrap ``django_asgi_app`` so the server's lifespan starts and drains an embedded worker.

    ``metrics``: record into the default Prometheus registry (``None``: when installed)."""
    return WorkerApplication(
        django_asgi_app, backend=backend, queues=tuple(queues), concurrency=concurrency,
        metrics=metrics,
    )  # fmt: skip


class WorkerApplication:
    def __init__(
        self, app: ASGIApp, *, backend: str, queues: tuple[str, ...], concurrency: int,
        metrics: bool | None = None,
    ) -> None:  # fmt: skip
        self.app = app
        self.backend = backend
        self.queues = queues
        self.concurrency = concurrency
        self.metrics = metrics
        self.worker: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        await self._lifespan(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        inner = _InnerLifespan(self.app, scope)
        message = await receive()
        assert message["type"] == "lifespan.startup", message
        embedded = EmbeddedWorker(self.backend, self.queues, self.concurrency, self.metrics)
        try:
            await embedded.start()
        except Exception as exc:
            logger.exception("vtasks: the embedded worker could not start")
            await send({"type": "lifespan.startup.failed", "message": f"vtasks worker: {exc}"})
            return
        self.worker = embedded.worker
        ok, text = await inner.step("lifespan.startup")
        if not ok:
            await embedded.stop()
            await send({"type": "lifespan.startup.failed", "message": text})
            return
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown", message
        ok, text = await inner.step("lifespan.shutdown")
        await embedded.stop()
        self.worker = None
        if ok:
            await send({"type": "lifespan.shutdown.complete"})
        else:
            await send({"type": "lifespan.shutdown.failed", "message": text})


class _InnerLifespan:
    """The wrapped app's side of the lifespan, if it speaks it (Django's ASGIHandler does not:
    it raises at once for a non-HTTP scope, which counts as "no lifespan" here)."""

    def __init__(self, app: ASGIApp, scope: Scope) -> None:
        self.app = app
        self.scope = scope
        self.supported = True
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def step(self, event: str) -> tuple[bool, str]:
        """Pass ``event`` to the app and wait for its answer: (completed?, failure message)."""
        if not self.supported:
            return True, ""
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        await self._to_app.put({"type": event})
        reply = await self._from_app.get()
        if reply is None:  # The app returned or raised: it takes no part in the lifespan.
            self.supported = False
            return True, ""
        return reply["type"].endswith(".complete"), str(reply.get("message", ""))

    async def _run(self) -> None:
        try:
            await self.app(dict(self.scope), self._to_app.get, self._from_app.put)
        except Exception as exc:
            logger.debug("vtasks: the wrapped app does not handle lifespan (%r)", exc)
        finally:
            self._from_app.put_nowait(None)
