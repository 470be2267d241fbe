"""The vtasks ``Task``: Django's ``Task`` plus retries, timeouts, uniqueness and result retention.

It is every vtasks backend's ``task_class``, so ``django.tasks.task(max_attempts=3)`` works as well
as ``vtasks.task(...)``. ``using()`` also takes these options, and ``run_after`` as a ``timedelta``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from django.db import transaction
from django.tasks import DEFAULT_TASK_BACKEND_ALIAS, DEFAULT_TASK_QUEUE_NAME
from django.tasks.base import DEFAULT_TASK_PRIORITY
from django.tasks.base import Task as DjangoTask
from django.utils import timezone

from vtasks.core.retry import Backoff

#: Fields of ``Task`` that ``using()`` may change besides Django's own four.
OPTION_FIELDS = (
    "max_attempts", "backoff", "timeout", "unique", "unique_key", "ttl",
    "remove_unique_on_complete", "result_ttl",
)  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Task(DjangoTask):
    #: Attempts in all (1 = no retry); ``None`` takes ``OPTIONS["MAX_ATTEMPTS"]`` (default 1).
    max_attempts: int | None = None
    #: ``backoff(exception, task_result) -> seconds | None``; ``None`` takes ``OPTIONS["BACKOFF"]``.
    backoff: Backoff | None = None
    #: Seconds an attempt may run before it fails with ``TaskTimeout``.
    timeout: float | None = None
    #: Admit one queued-or-running task per key; a duplicate ``enqueue`` returns ``None``.
    unique: bool = False
    #: The uniqueness key; by default the task path with its arguments.
    unique_key: str | None = None
    #: Seconds the unique key is held at most (a throttle with ``remove_unique_on_complete=False``).
    ttl: float | None = None
    remove_unique_on_complete: bool = True
    #: Seconds a finished result is kept; ``None`` takes ``OPTIONS["RESULT_TTL"]``; 0 deletes at once.
    result_ttl: float | None = None

    def using(  # type: ignore[override]
        self,
        *,
        priority: int | None = None,
        queue_name: str | None = None,
        run_after: datetime | timedelta | None = None,
        backend: str | None = None,
        **options: Any,
    ) -> Task:
        """A copy with other defaults. ``run_after`` may be a ``timedelta`` from now."""
        if "backoff" in options:
            raise TypeError(
                "backoff is part of the task's definition: set it in @task(backoff=...)"
            )
        unknown = set(options) - set(OPTION_FIELDS)
        if unknown:
            raise TypeError(f"using() got unknown option(s): {', '.join(sorted(unknown))}")
        changes: dict[str, Any] = {k: v for k, v in options.items()}
        if priority is not None:
            changes["priority"] = priority
        if queue_name is not None:
            changes["queue_name"] = queue_name
        if run_after is not None:
            changes["run_after"] = _as_datetime(run_after)
        if backend is not None:
            changes["backend"] = backend
        return dataclasses.replace(self, **changes)


def _as_datetime(run_after: datetime | timedelta) -> datetime:
    if isinstance(run_after, timedelta):
        return timezone.now() + run_after
    return run_after


def task(
    function: Callable[..., Any] | None = None,
    *,
    priority: int = DEFAULT_TASK_PRIORITY,
    queue_name: str = DEFAULT_TASK_QUEUE_NAME,
    backend: str = DEFAULT_TASK_BACKEND_ALIAS,
    takes_context: bool = False,
    **options: Any,
) -> Any:
    """Like ``django.tasks.task``, always building a vtasks ``Task`` (whatever the backend's class)."""
    if "run_after" in options:
        raise TypeError(
            "run_after cannot be defined statically with the @task decorator. "
            "Use .using(run_after=...) to set it dynamically."
        )

    def wrapper(func: Callable[..., Any]) -> Task:
        return Task(
            func=func, priority=priority, queue_name=queue_name, backend=backend,
            takes_context=takes_context, **options,
        )  # fmt: skip

    return wrapper(function) if function else wrapper


def enqueue_on_commit(
    task: DjangoTask, *args: Any, using: str | None = None, **kwargs: Any
) -> None:
    """Enqueue ``task`` once the current transaction on ``using`` commits (at once outside one)."""
    transaction.on_commit(partial(task.enqueue, *args, **kwargs), using=using)
