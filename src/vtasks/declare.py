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
from django.tasks import DEFAULT_TASK_BACKEND_ALIAS, DEFAULT_TASK_QUEUE_NAME, task_backends
from django.tasks.base import DEFAULT_TASK_PRIORITY
from django.tasks.base import Task as DjangoTask
from django.tasks.exceptions import InvalidTask
from django.utils import timezone

from vtasks.backends.concurrency import check_template
from vtasks.core.retry import Backoff

#: Fields of ``Task`` that ``using()`` may change besides Django's own four.
OPTION_FIELDS = (
    "max_attempts", "backoff", "timeout", "unique", "unique_key", "ttl",
    "remove_unique_on_complete", "result_ttl", "concurrency_key", "concurrency_limit", "on_conflict",
)  # fmt: skip
#: What a task does when its concurrency key is at its limit: wait its turn, or fail at once.
ON_CONFLICT = ("block", "discard")


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
    #: At most ``concurrency_limit`` calls with this key run at once across all workers. A
    #: ``str.format`` template over the task's parameters: ``"account:{account_id}"``.
    concurrency_key: str | None = None
    concurrency_limit: int = 1
    #: ``"block"``: wait (without holding a worker slot) until the key has room; ``"discard"``:
    #: the call fails at once with ``ConcurrencyLimited``.
    on_conflict: str = "block"

    def __post_init__(self) -> None:
        _check_concurrency(self)
        DjangoTask.__post_init__(self)  # zero-argument super() fails in a slotted dataclass

    def get_backend(self) -> Any:
        """Django's look-up, without its import statement (run on every enqueue)."""
        return task_backends[self.backend]

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


def _check_concurrency(task: Task) -> None:
    if task.concurrency_key is None:
        return
    if not isinstance(task.concurrency_key, str) or not task.concurrency_key:
        raise InvalidTask(
            f"concurrency_key must be a non-empty string, got {task.concurrency_key!r}."
        )
    limit = task.concurrency_limit
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise InvalidTask(f"concurrency_limit must be a whole number >= 1, got {limit!r}.")
    if task.on_conflict not in ON_CONFLICT:
        raise InvalidTask(
            f"on_conflict must be one of {', '.join(map(repr, ON_CONFLICT))}, got {task.on_conflict!r}."
        )
    check_template(task.concurrency_key, task.func, task.takes_context)


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
