"""A Celery-style API on vtasks tasks, so a Celery code base can move over without rewriting calls.

``@shared_task`` builds a real vtasks ``Task`` (the ``CeleryTask`` subclass), so the module-level
name is a declared task: ``import_string(path)`` gives it back and the worker runs it like any other.
The Celery calls map onto Django's API::

    @shared_task(queue="mail", priority=7, autoretry_for=(ConnectionError,),
                 retry_kwargs={"max_retries": 5, "countdown": 10})
    def send(to): ...

    send.delay("a@b.c")                     # task.enqueue("a@b.c")
    send.apply_async(("a@b.c",), countdown=60, priority=9, queue="urgent")
    send.s("a@b.c").delay()                 # a signature
    send("a@b.c")                           # runs the function here

Options: ``name`` is ignored (the task path is the name), ``queue``, ``priority``,
``autoretry_for`` with ``retry_kwargs={"max_retries", "countdown"}`` (or ``max_retries``,
``default_retry_delay``, ``retry_backoff``, ``retry_backoff_max``, ``retry_jitter``),
``time_limit`` (the vtasks ``timeout``), ``ignore_result`` (ignored), and ``backend`` (the
``TASKS`` alias, a vtasks extension). ``bind=True`` is refused: a vtasks task has no ``self``.

Priorities: Celery's 0..9 map linearly onto Django's -100..100 with 9 the highest (RabbitMQ's
order, and Django's direction): 0 -> -100, 4 -> -11, 5 -> 11, 9 -> 100; no priority stays 0. Code
written for Celery's Redis transport, where 0 is the highest, sets
``VTASKS_CELERY_REDIS_PRIORITIES = True`` to turn the scale round.

``settings.CELERY_TASK_ALWAYS_EAGER`` runs calls at once in the caller (retries included, without
waiting); ``CELERY_TASK_EAGER_PROPAGATES`` re-raises a failure instead of returning it.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

from django.conf import settings
from django.tasks import (
    DEFAULT_TASK_BACKEND_ALIAS,
    DEFAULT_TASK_QUEUE_NAME,
    TaskResult,
    TaskResultStatus,
    task_backends,
)
from django.tasks.base import TaskError
from django.utils import timezone

from vtasks.core.errors import Revoked, TaskFailed
from vtasks.core.retry import Backoff, ExponentialBackoff, retry_delay
from vtasks.declare import Task
from vtasks.wire import codec

_OPTIONS = {
    "name", "queue", "priority", "autoretry_for", "retry_kwargs", "max_retries",
    "default_retry_delay", "retry_backoff", "retry_backoff_max", "retry_jitter", "time_limit",
    "ignore_result", "backend", "bind",
}  # fmt: skip
#: Celery's default ``max_retries`` and ``default_retry_delay`` (seconds).
_MAX_RETRIES, _RETRY_DELAY = 3, 180.0


def shared_task(*args: Any, **options: Any) -> Any:
    """``@shared_task`` or ``@shared_task(**options)``: declare a vtasks task the Celery way."""
    if options.get("bind"):
        raise TypeError(
            "shared_task(bind=True) is not supported: vtasks tasks receive no `self`. Drop bind; "
            "use autoretry_for=... for retries, or vtasks' @task(takes_context=True) for the "
            "task id and attempt number."
        )
    unknown = set(options) - _OPTIONS
    if unknown:
        raise TypeError(f"shared_task() got unsupported option(s): {', '.join(sorted(unknown))}")
    fields = _task_fields(options)

    def decorate(func: Callable[..., Any]) -> CeleryTask:
        return CeleryTask(func=func, **fields)

    if args:
        if len(args) == 1 and callable(args[0]) and not options:
            return decorate(args[0])
        raise TypeError("shared_task takes the function alone, or keyword options only")
    return decorate


def celery_priority(value: int) -> int:
    """Celery's 0..9 as Django's -100..100 (see the module docstring for the direction)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 9:
        raise ValueError(f"a Celery priority is a whole number from 0 to 9, got {value!r}")
    if getattr(settings, "VTASKS_CELERY_REDIS_PRIORITIES", False):
        value = 9 - value
    return round(value * 200 / 9 - 100)


@dataclasses.dataclass(frozen=True, slots=True)
class Countdown:
    """Celery's fixed retry delay: ``seconds`` after a failure that is one of ``retry_on``."""

    seconds: float
    retry_on: tuple[type[BaseException], ...]

    def __call__(self, exception: BaseException, task_result: Any) -> float | None:
        return self.seconds if isinstance(exception, self.retry_on) else None


def _task_fields(options: dict[str, Any]) -> dict[str, Any]:
    """The vtasks ``Task`` fields that Celery's decorator options stand for."""
    fields: dict[str, Any] = {
        "queue_name": options.get("queue") or DEFAULT_TASK_QUEUE_NAME,
        "backend": options.get("backend") or DEFAULT_TASK_BACKEND_ALIAS,
    }
    if options.get("priority") is not None:
        fields["priority"] = celery_priority(options["priority"])
    if options.get("time_limit"):
        fields["timeout"] = float(options["time_limit"])
    retry_on = tuple(options.get("autoretry_for") or ())
    if not retry_on:
        return fields
    retry_kwargs = dict(options.get("retry_kwargs") or {})
    if set(retry_kwargs) - {"max_retries", "countdown"}:
        raise TypeError("retry_kwargs takes max_retries and countdown only")
    max_retries = retry_kwargs.get("max_retries", options.get("max_retries", _MAX_RETRIES))
    if not isinstance(max_retries, int) or max_retries < 0:
        raise TypeError(
            f"max_retries must be a whole number >= 0 (never None), not {max_retries!r}"
        )
    fields["max_attempts"] = max_retries + 1
    backoff: Backoff
    if options.get("retry_backoff"):
        base = options["retry_backoff"]
        backoff = ExponentialBackoff(
            base=1.0 if base is True else float(base),
            cap=float(options.get("retry_backoff_max", 600)),
            jitter=bool(options.get("retry_jitter", True)),
            retry_on=retry_on,
        )
    else:
        delay = retry_kwargs.get("countdown", options.get("default_retry_delay", _RETRY_DELAY))
        backoff = Countdown(seconds=float(delay), retry_on=retry_on)
    fields["backoff"] = backoff
    return fields


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CeleryTask(Task):
    """A vtasks ``Task`` with Celery's calling API; calling it runs the function."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.call(*args, **kwargs)

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult | EagerResult | None:
        return self.apply_async(args, kwargs)

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        countdown: float | None = None,
        eta: datetime | None = None,
        queue: str | None = None,
        priority: int | None = None,
    ) -> AsyncResult | EagerResult | None:
        """Enqueue (``None`` only for a unique task's duplicate); eager mode runs it here."""
        if countdown is not None and eta is not None:
            raise TypeError("apply_async() takes countdown or eta, not both")
        run_after: datetime | timedelta | None = None
        if countdown is not None:
            run_after = timedelta(seconds=countdown)
        elif eta is not None:
            run_after = eta if timezone.is_aware(eta) else timezone.make_aware(eta)
        task = cast(
            CeleryTask,
            self.using(
                queue_name=queue,
                priority=None if priority is None else celery_priority(priority),
                run_after=None if _eager() else run_after,
            ),
        )
        if _eager():
            return task.apply(args, kwargs)
        result = task.enqueue(*(args or ()), **(kwargs or {}))
        return None if result is None else AsyncResult(result.id, backend=result.backend)

    def apply(
        self, args: Sequence[Any] | None = None, kwargs: dict[str, Any] | None = None
    ) -> EagerResult:
        """Run here and now, retrying as the task's policy says (without waiting)."""
        norm_args, norm_kwargs = codec.normalize_arguments(args or (), kwargs or {})
        backend = self.get_backend()
        max_attempts = getattr(backend, "max_attempts_for", lambda t: t.max_attempts or 1)(self)
        backoff = getattr(backend, "backoff_for", lambda t: t.backoff)(self)
        attempt = 0
        while True:
            attempt += 1
            try:
                value = codec.normalize(self.call(*norm_args, **norm_kwargs), "return value")
            except Exception as exc:
                info = SimpleNamespace(attempts=attempt)
                if retry_delay(backoff, exc, info, attempt, max_attempts) is not None:
                    continue
                if getattr(settings, "CELERY_TASK_EAGER_PROPAGATES", False):
                    raise
                return EagerResult(exception=exc)
            return EagerResult(value=value)

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        return Signature(task=self, args=args, kwargs=kwargs)

    signature = s


@dataclasses.dataclass(frozen=True, slots=True)
class Signature:
    """A task with (some of) its arguments and options: ``.delay()``, ``.apply_async()``."""

    task: CeleryTask
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def set(self, **options: Any) -> Signature:
        return dataclasses.replace(self, options={**self.options, **options})

    def delay(self, *args: Any, **kwargs: Any) -> AsyncResult | EagerResult | None:
        return self.apply_async(args, kwargs)

    def apply_async(
        self,
        args: Sequence[Any] | None = None,
        kwargs: dict[str, Any] | None = None,
        **options: Any,
    ) -> AsyncResult | EagerResult | None:
        return self.task.apply_async(
            (*self.args, *(args or ())), {**self.kwargs, **(kwargs or {})},
            **{**self.options, **options},
        )  # fmt: skip

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.task(*self.args, *args, **{**self.kwargs, **kwargs})


_STATES = {
    TaskResultStatus.READY: "PENDING",
    TaskResultStatus.RUNNING: "STARTED",
    TaskResultStatus.SUCCESSFUL: "SUCCESS",
    TaskResultStatus.FAILED: "FAILURE",
}
_REVOKED_PATH = f"{Revoked.__module__}.{Revoked.__qualname__}"


class AsyncResult:
    """Celery's result handle over a stored vtasks result: each property reads it afresh.

    Unlike Celery, an unknown (or already purged) id raises ``TaskResultDoesNotExist`` instead of
    reading as PENDING forever.
    """

    def __init__(self, id: str, *, backend: str = DEFAULT_TASK_BACKEND_ALIAS) -> None:
        self.id = id
        self.backend = backend

    def __repr__(self) -> str:
        return f"<AsyncResult: {self.id}>"

    def _fetch(self) -> TaskResult:
        return task_backends[self.backend].get_result(self.id)

    @property
    def state(self) -> str:
        """PENDING (waiting; RETRY once an attempt failed), STARTED, SUCCESS, FAILURE, REVOKED."""
        return _state(self._fetch())

    status = state

    @property
    def result(self) -> Any:
        """The return value, the failure's exception, or ``None`` while unfinished."""
        return _outcome(self._fetch())

    def ready(self) -> bool:
        return self._fetch().is_finished

    def successful(self) -> bool:
        return self.state == "SUCCESS"

    def failed(self) -> bool:
        return self.state in ("FAILURE", "REVOKED")

    def get(
        self, timeout: float | None = None, propagate: bool = True, interval: float = 0.5
    ) -> Any:
        """Poll until finished (``TimeoutError`` after ``timeout`` seconds); raise a failure's
        exception with ``propagate``, else return it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (found := self._fetch()).is_finished:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"task {self.id} did not finish within {timeout}s")
            time.sleep(interval if deadline is None else min(interval, deadline - time.monotonic()))
        value = _outcome(found)
        if found.status == TaskResultStatus.FAILED and propagate:
            raise value
        return value

    def revoke(self) -> bool:
        """Make a task that has not started never run (FAILED with ``Revoked``); whether it was
        still waiting. A running task is left alone."""
        from vtasks.compat.revoke import revoke

        return revoke(self.backend, self.id)


class EagerResult:
    """The result of a call run in the caller (``CELERY_TASK_ALWAYS_EAGER``)."""

    def __init__(self, *, value: Any = None, exception: BaseException | None = None) -> None:
        self.id = os.urandom(16).hex()
        self._value = value
        self._exception = exception
        self.state = self.status = "FAILURE" if exception is not None else "SUCCESS"

    @property
    def result(self) -> Any:
        return self._exception if self._exception is not None else self._value

    def ready(self) -> bool:
        return True

    def successful(self) -> bool:
        return self._exception is None

    def failed(self) -> bool:
        return self._exception is not None

    def get(
        self, timeout: float | None = None, propagate: bool = True, interval: float = 0.5
    ) -> Any:
        if self._exception is not None and propagate:
            raise self._exception
        return self.result

    def revoke(self) -> bool:
        return False  # It has run already.


def _eager() -> bool:
    return bool(getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False))


def _state(found: TaskResult) -> str:
    if found.status == TaskResultStatus.FAILED and found.errors:
        if found.errors[-1].exception_class_path == _REVOKED_PATH:
            return "REVOKED"
    if found.status == TaskResultStatus.READY and found.errors:
        return "RETRY"
    return _STATES[TaskResultStatus(found.status)]


def _outcome(found: TaskResult) -> Any:
    if found.status == TaskResultStatus.SUCCESSFUL:
        return found.return_value
    if found.status == TaskResultStatus.FAILED and found.errors:
        return _exception(found.errors[-1])
    return None


def _exception(error: TaskError) -> BaseException:
    """The failure's exception, rebuilt from its class path and the traceback's last line."""
    last = error.traceback.rstrip().splitlines()[-1] if error.traceback.strip() else ""
    message = last.partition(": ")[2]
    try:
        return error.exception_class(message)
    except Exception:
        return TaskFailed(f"{error.exception_class_path}: {message}")
