"""``ImmediateBackend``: run every task at once, in the caller, for tests.

Like Django's own ImmediateBackend, but with vtasks' options: retries (``max_attempts`` and
``backoff``, retried at once without sleeping, one ``TaskError`` per failed attempt), results kept
for ``get_result``, the strict JSON argument check of the other backends, and batch queues held
until flushed, so a test sees what a worker would do without running one.
"""

from __future__ import annotations

import asyncio
import copy
import inspect
import sys
import traceback
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.dispatch import Signal
from django.tasks import TaskContext, TaskResult, TaskResultStatus
from django.tasks.base import Task as DjangoTask
from django.tasks.base import TaskError
from django.tasks.exceptions import TaskResultDoesNotExist
from django.tasks.signals import task_finished, task_started
from django.utils import timezone
from django.utils.crypto import get_random_string

from vtasks.backends.base import NewTask, VTasksBackend
from vtasks.core.errors import TaskTimeout
from vtasks.core.retry import retry_delay
from vtasks.wire import codec

#: ``settings.VTASKS_BATCH_QUEUES``: ``{queue: {"count": n, "timeout": seconds}}``.
BATCH_QUEUES_SETTING = "VTASKS_BATCH_QUEUES"


class ImmediateBackend(VTasksBackend):
    """``TASKS[alias]["BACKEND"] = "vtasks.backends.immediate.ImmediateBackend"`` (tests only).

    ``enqueue`` runs the task before it returns and hands back the finished ``TaskResult``
    (SUCCESSFUL, or FAILED with one error per attempt). Every vtasks option is accepted:
    ``unique``/``ttl`` are ignored (each call runs), ``run_after`` is ignored (it runs now),
    ``timeout`` is enforced for async tasks only (a sync call cannot be interrupted in the
    caller's thread), ``result_ttl`` is ignored, and so are concurrency limits (each call runs at
    once; the key is still formatted, so a call missing a name fails as it would elsewhere).

    Results live in ``self.results``, per instance, and Django keeps one backend instance per
    thread or async context: ``get_result`` sees only what this thread (context) enqueued.

    Batch queues (``settings.VTASKS_BATCH_QUEUES``): a call on such a queue stays READY in
    ``pending_batches[queue]`` until ``flush_batch(queue)`` or ``flush_batches()``, or until the
    queue's ``count`` is reached (its ``timeout`` is not waited for; tests flush). A flush calls
    each task once with the list of its messages (``{"id", "args", "kwargs", "enqueued_at"}``,
    ``enqueued_at`` as ISO 8601 text) as its single argument; every message's result gets that
    call's outcome.
    """

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        self.worker_id = get_random_string(32)
        self.results: dict[str, TaskResult] = {}
        self.pending_batches: dict[str, list[TaskResult]] = defaultdict(list)

    # -- enqueue -------------------------------------------------------------------------------
    def enqueue(  # type: ignore[override]
        self, task: DjangoTask, args: Sequence[Any], kwargs: dict[str, Any]
    ) -> TaskResult:
        result = self._accept(self.prepare(task, args, kwargs))
        if self._batch_count(task.queue_name) is not None:
            self._hold(result)
            return result
        if inspect.iscoroutinefunction(task.func):
            async_to_sync(self._arun)([result], _single_call(result))
        else:
            self._run([result], _single_call(result))
        return result

    async def aenqueue(  # type: ignore[override]
        self, task: DjangoTask, args: Sequence[Any], kwargs: dict[str, Any]
    ) -> TaskResult:
        result = self._accept(self.prepare(task, args, kwargs))
        if self._batch_count(task.queue_name) is not None:
            if self._hold(result, flush=False):
                await sync_to_async(self.flush_batch, thread_sensitive=True)(task.queue_name)
            return result
        if inspect.iscoroutinefunction(task.func):
            await self._arun([result], _single_call(result))
        else:
            await sync_to_async(self._run, thread_sensitive=True)([result], _single_call(result))
        return result

    def enqueue_many(  # type: ignore[override]
        self, calls: Iterable[tuple[DjangoTask, Sequence[Any], dict[str, Any]]]
    ) -> list[TaskResult]:
        """Each call in turn, as ``enqueue`` (nothing is stored, so there is nothing to batch)."""
        return [self.enqueue(task, args, kwargs) for task, args, kwargs in calls]

    def _accept(self, new: NewTask) -> TaskResult:
        result = self._enqueued(new)  # the READY result, task_enqueued sent
        self.results[result.id] = result
        return result

    # -- results -------------------------------------------------------------------------------
    def get_result(self, result_id: str) -> TaskResult:
        try:
            return copy.deepcopy(self.results[str(result_id)])
        except KeyError:
            raise TaskResultDoesNotExist(result_id) from None

    async def aget_result(self, result_id: str) -> TaskResult:
        return self.get_result(result_id)

    # -- batch queues --------------------------------------------------------------------------
    def _batch_count(self, queue: str) -> int | None:
        """The queue's batch size when it is a batch queue (``0``: no size limit), else ``None``."""
        config = getattr(settings, BATCH_QUEUES_SETTING, None) or {}
        if queue not in config:
            return None
        return int((config[queue] or {}).get("count") or 0)

    def _hold(self, result: TaskResult, flush: bool = True) -> bool:
        """Keep ``result`` for its queue's next batch; whether the batch is full (and, with
        ``flush``, has been run)."""
        queue = result.task.queue_name
        self.pending_batches[queue].append(result)
        count = self._batch_count(queue)
        full = bool(count) and len(self.pending_batches[queue]) >= (count or 0)
        if full and flush:
            self.flush_batch(queue)
        return full

    def flush_batch(self, queue: str) -> list[TaskResult]:
        """Run the messages held for ``queue``: one call per task path; returns their results."""
        held = self.pending_batches.pop(queue, [])
        groups: dict[str, list[TaskResult]] = defaultdict(list)
        for result in held:
            groups[result.task.module_path].append(result)
        for results in groups.values():
            call = _batch_call(results)
            if inspect.iscoroutinefunction(results[0].task.func):
                async_to_sync(self._arun)(results, call)
            else:
                self._run(results, call)
        return held

    def flush_batches(self) -> list[TaskResult]:
        """``flush_batch`` for every queue holding messages."""
        return [
            result for queue in list(self.pending_batches) for result in self.flush_batch(queue)
        ]

    # -- running -------------------------------------------------------------------------------
    def _run(self, results: list[TaskResult], call: Callable[[TaskResult], Any]) -> None:
        """Attempts of a sync task until one succeeds or the retry policy gives up."""
        while True:
            _begin(results, self.worker_id)
            _send(task_started, self, results)
            try:
                value = codec.normalize(call(results[0]), "return value")
            except KeyboardInterrupt:
                raise  # Django's contract: a shutdown, not a failure.
            except BaseException as exc:
                retry = self._failed(results, exc)
                _send(task_finished, self, results)  # inside except: the traceback is logged
                if retry:
                    continue
                return
            _succeeded(results, value)
            _send(task_finished, self, results)
            return

    async def _arun(
        self, results: list[TaskResult], call: Callable[[TaskResult], Awaitable[Any]]
    ) -> None:
        """Attempts of an async task; signals go to the receivers' thread (they may use the ORM)."""
        timeout = getattr(results[0].task, "timeout", None)
        while True:
            _begin(results, self.worker_id)
            await sync_to_async(_send)(task_started, self, results)
            try:
                async with asyncio.timeout(timeout):
                    value = codec.normalize(await call(results[0]), "return value")
            except (KeyboardInterrupt, asyncio.CancelledError):
                raise
            except BaseException as exc:
                if isinstance(exc, TimeoutError) and timeout is not None:
                    exc = TaskTimeout(f"the attempt ran past its timeout of {timeout:g}s")
                retry = self._failed(results, exc)
                await sync_to_async(_send)(task_finished, self, results, exc)
                if retry:
                    continue
                return
            _succeeded(results, value)
            await sync_to_async(_send)(task_finished, self, results)
            return

    def _failed(self, results: list[TaskResult], exc: BaseException) -> bool:
        """Record the attempt's error; whether the task's policy retries it (at once, here)."""
        first = results[0]
        delay = retry_delay(
            self.backoff_for(first.task), exc, first, first.attempts,
            self.max_attempts_for(first.task),
        )  # fmt: skip
        error = TaskError(
            exception_class_path=f"{type(exc).__module__}.{type(exc).__qualname__}",
            traceback="".join(traceback.format_exception(exc)),
        )
        now = timezone.now()
        for result in results:
            result.errors.append(error)
            if delay is None:
                object.__setattr__(result, "status", TaskResultStatus.FAILED)
                object.__setattr__(result, "finished_at", now)
            else:
                object.__setattr__(result, "status", TaskResultStatus.READY)
        return delay is not None


def _begin(results: list[TaskResult], worker_id: str) -> None:
    now = timezone.now()
    for result in results:
        object.__setattr__(result, "status", TaskResultStatus.RUNNING)
        object.__setattr__(result, "started_at", result.started_at or now)
        object.__setattr__(result, "last_attempted_at", now)
        result.worker_ids.append(worker_id)  # before the call: attempt N sees attempts == N


def _succeeded(results: list[TaskResult], value: Any) -> None:
    now = timezone.now()
    for result in results:
        object.__setattr__(result, "status", TaskResultStatus.SUCCESSFUL)
        object.__setattr__(result, "finished_at", now)
        object.__setattr__(result, "_return_value", value)


def _send(
    signal: Signal, backend: Any, results: list[TaskResult], exc: BaseException | None = None
) -> None:
    """Send ``signal`` per result; with ``exc`` (raised again here, in the receivers' thread) so
    that ``sys.exc_info()`` is set for Django's logging receiver, as inside an ``except`` block."""
    if exc is not None and sys.exc_info()[1] is not exc:
        try:
            raise exc
        except BaseException:
            _send(signal, backend, results)
        return
    for result in results:
        signal.send(type(backend), task_result=result)


def _arguments(task: DjangoTask, result: TaskResult, args: list[Any]) -> list[Any]:
    return [TaskContext(task_result=result), *args] if task.takes_context else args


def _single_call(result: TaskResult) -> Callable[[TaskResult], Any]:
    """Call the task with its own arguments (a coroutine for an async task)."""
    return lambda current: result.task.func(
        *_arguments(result.task, current, result.args), **result.kwargs
    )


def _batch_call(results: list[TaskResult]) -> Callable[[TaskResult], Any]:
    """Call the task once with the batch's messages as its single argument."""
    messages = [
        {
            "id": r.id,
            "args": r.args,
            "kwargs": r.kwargs,
            "enqueued_at": r.enqueued_at.isoformat() if r.enqueued_at else None,
        }
        for r in results
    ]
    task = results[0].task
    return lambda current: task.func(*_arguments(task, current, [messages]))
