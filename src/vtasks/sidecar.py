"""The scheduler beside a lone worker (``runworker --scheduler``), in a thread of the same process.

django-vtasks runs its scheduler inside the worker; a vtasks deployment may do the same instead of
running ``vtasks scheduler`` on its own. Any number may run: each slot still fires once, because
the backend admits a (schedule, slot) pair atomically with its enqueue. The loop is synchronous
and sleeps at most half a second, so it stops within that once the worker has stopped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from vtasks.core.errors import ConfigError

logger = logging.getLogger("vtasks.scheduler")


class SchedulerThread:
    """``with SchedulerThread("default"): run the worker`` runs ``VTASKS_SCHEDULE`` and the
    backend's dynamic schedules until the block ends."""

    def __init__(self, backend_alias: str = "default") -> None:
        from django.tasks import task_backends

        from vtasks.scheduler import schedules_from_settings

        backend = task_backends[backend_alias]
        if not hasattr(backend, "fire_slot"):
            raise ConfigError(
                f"backend {backend_alias!r} ({type(backend).__name__}) cannot run schedules"
            )
        self.backend = backend
        self.static = schedules_from_settings()  # a bad VTASKS_SCHEDULE fails here, not later
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="vtasks-scheduler", daemon=True)

    def __enter__(self) -> SchedulerThread:
        self.thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        from django.db import connections

        from vtasks.runtime.scheduler import SchedulerLoop
        from vtasks.scheduler import ScheduleSet

        static = self.static
        try:
            purge = getattr(self.backend, "purge", None)
            SchedulerLoop(
                static,
                fire=_fresh(self.backend.fire_slot),
                last_slot=_fresh(self.backend.last_slot),
                stopping=self.stop.is_set,
                housekeeping=_fresh(purge) if purge else None,
                reload=_fresh(ScheduleSet(self.backend, static)),
            ).run()
        except Exception:
            logger.exception("vtasks: the scheduler beside the worker stopped")
        finally:
            connections.close_all()  # this thread's own connections


def _fresh(call: Callable[..., Any]) -> Callable[..., Any]:
    """``call`` after Django drops broken or expired connections (nothing else does it here)."""
    from django.db import close_old_connections

    def fresh(*args: Any) -> Any:
        close_old_connections()
        return call(*args)

    return fresh
