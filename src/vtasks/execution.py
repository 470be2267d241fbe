"""Run one claimed task for the worker and say how it ended.

Django's side of an attempt lives here: resolving the path to a declared task, the ``TaskContext``,
the ``task_started``/``task_finished`` signals (finished is sent from inside the ``except`` block so
Django's logger records the traceback), JSON-normalising the return value, timeouts and the retry
decision. Sync tasks run whole (signals included) in the worker's thread pool; async tasks run on
the loop.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any

from django.dispatch import Signal
from django.tasks import TaskContext, TaskResult, TaskResultStatus, task_backends
from django.tasks.base import Task as DjangoTask
from django.tasks.base import TaskError
from django.tasks.exceptions import InvalidTaskBackend
from django.tasks.signals import task_finished, task_started
from django.utils.module_loading import import_string

from vtasks.backends.receivers import only_djangos, wanted
from vtasks.backends.results import make_result
from vtasks.core.errors import EnvelopeError, UnknownTask
from vtasks.drivers.base import Claim, Outcome
from vtasks.outcomes import (
    failure,
    success,
    timeout_error,
    unknown_backend,
    unrunnable,
)
from vtasks.runtime.threads import Then, ThreadRunner
from vtasks.task_threads import close_connections_if_used
from vtasks.wire import codec


class _Abandoned(Exception):
    """Raised inside a timed-out sync attempt's thread when it finally returns (its result is void)."""


class Executor:
    """Turns a ``Claim`` into an ``Outcome``. One per worker process."""

    def __init__(self, threads: ThreadRunner) -> None:
        self.threads = threads
        self.abandoned_threads = 0
        self._tasks: dict[str, tuple[DjangoTask, bool] | Exception] = {}
        # Django keeps backend instances per thread/context (an asgiref Local look-up each time);
        # the worker needs only each alias's options, so one instance per alias serves.
        self._backends: dict[str, Any] = {}

    async def run(self, claim: Claim) -> Outcome:
        backend = self._backends.get(claim.backend)
        if backend is None:
            backend = self._backend(claim.backend)
        if claim.problem:
            return unrunnable(backend, claim, EnvelopeError(claim.problem))
        if backend is None:
            return unrunnable(backend, claim, unknown_backend(claim.backend))
        found = self.resolve(claim.task_path)
        if isinstance(found, Exception):
            return unrunnable(backend, claim, found)
        task, is_async = found
        result = _running_result(task, claim)
        timeout = claim.options.get("timeout")
        if is_async:
            return await self._run_async(task, backend, claim, result, timeout)
        return await self._run_sync(task, backend, claim, result, timeout)

    def start(
        self, claim: Claim, hand_over: bool = False, then: Then = None
    ) -> asyncio.Future[Outcome] | None:
        """A plain sync attempt (a known task, no timeout) started on a thread: its future, whose
        result is the ``Outcome``. ``None`` for any other claim, which ``run`` takes.
        ``hand_over`` and ``then``: see ``ThreadRunner.submit``.

        The worker then needs no coroutine and no asyncio task per claim: for a short sync task
        those cost about as much as everything else the event loop does for it.
        """
        backend = self._backends.get(claim.backend)
        found = self._tasks.get(claim.task_path)  # seen before: ``run`` resolved it once
        if backend is None or found is None or isinstance(found, Exception) or claim.problem:
            return None
        task, is_async = found
        if is_async or claim.options.get("timeout") is not None:
            return None
        return self.threads.submit(
            _attempt_in_thread, task, backend, claim, None, None, hand_over=hand_over, then=then
        )

    def refuse(self, claim: Claim, exc: Exception) -> Outcome:
        """A FAILED outcome for a claim the worker does not run (a full concurrency key)."""
        return unrunnable(self._backend(claim.backend), claim, exc)

    async def run_batch(self, claims: list[Claim]) -> list[Outcome]:
        """Run a batch queue's claims: each task once, with the list of its messages.

        The messages of one task path succeed, or fail and retry, together: each claim gets the
        call's outcome under its own retry policy (its attempt and ``max_attempts``). Signals are
        sent per message, as for single tasks. A batch call has no timeout.
        """
        outcomes: list[Outcome] = []
        groups: dict[str, list[Claim]] = {}
        for claim in claims:
            backend = self._backend(claim.backend)
            if claim.problem:
                outcomes.append(unrunnable(backend, claim, EnvelopeError(claim.problem)))
                continue
            if backend is None:
                outcomes.append(unrunnable(backend, claim, unknown_backend(claim.backend)))
                continue
            found = self.resolve(claim.task_path)
            if isinstance(found, Exception):
                outcomes.append(unrunnable(backend, claim, found))
                continue
            groups.setdefault(claim.task_path, []).append(claim)
        for group in groups.values():
            outcomes += await self._run_group(group)
        return outcomes

    async def _run_group(self, claims: list[Claim]) -> list[Outcome]:
        task, is_async = self.resolve(claims[0].task_path)  # type: ignore[misc]  # resolved above
        backend = self._backend(claims[0].backend)
        results = [_running_result(task, claim) for claim in claims]
        messages = [_batch_message(claim) for claim in claims]
        args = [messages]
        if task.takes_context:
            args.insert(0, TaskContext(task_result=results[0]))
        for result in results:
            await _send(self.threads, task_started, backend, result)
        try:
            if is_async:
                value = await task.func(*args)
            else:
                value = await self.threads.submit(_call_in_thread, task.func, args)
            value, text = codec.encode_return(value)
        except BaseException as exc:
            if _stops_the_worker(exc):
                raise
            outcomes = [
                failure(backend, task, claim, result, exc)
                for claim, result in zip(claims, results, strict=True)
            ]
            for result in results:
                await _send(self.threads, task_finished, backend, result, exc)
            return outcomes
        outcomes = [
            success(backend, task, claim, result, value, text)
            for claim, result in zip(claims, results, strict=True)
        ]
        for result in results:
            await _send(self.threads, task_finished, backend, result)
        return outcomes

    def _backend(self, alias: str) -> Any | None:
        """The backend instance of ``alias``; ``None`` when no TASKS alias has that name (a corrupt
        message, or an alias removed from the settings): its claims fail rather than loop."""
        backend = self._backends.get(alias)
        if backend is None:
            try:
                backend = self._backends[alias] = task_backends[alias]
            except InvalidTaskBackend:
                return None
        return backend

    def resolve(self, path: str) -> tuple[DjangoTask, bool] | Exception:
        """The declared task at ``path`` and whether it is async (cached), or why there is none."""
        found = self._tasks.get(path)
        if found is None:
            task = _resolve(path)
            found = (
                task
                if isinstance(task, Exception)
                else (task, inspect.iscoroutinefunction(task.func))
            )
            self._tasks[path] = found
        return found

    async def _run_async(
        self,
        task: DjangoTask,
        backend: Any,
        claim: Claim,
        result: TaskResult,
        timeout: float | None,
    ) -> Outcome:
        await _send(self.threads, task_started, backend, result)
        try:
            if timeout is None:  # no timeout context: it costs more than a no-op task
                value = await _call(task, result, claim)
            else:
                async with asyncio.timeout(timeout):
                    value = await _call(task, result, claim)
            value, text = codec.encode_return(value)
        except BaseException as exc:
            if _stops_the_worker(exc):
                raise
            if isinstance(exc, TimeoutError) and timeout is not None:
                exc = timeout_error(timeout)
            outcome = failure(backend, task, claim, result, exc)
            await _send(self.threads, task_finished, backend, result, exc)
            return outcome
        outcome = success(backend, task, claim, result, value, text)
        await _send(self.threads, task_finished, backend, result)
        return outcome

    async def _run_sync(
        self,
        task: DjangoTask,
        backend: Any,
        claim: Claim,
        result: TaskResult,
        timeout: float | None,
    ) -> Outcome:
        if timeout is None:
            return await self.threads.submit(_attempt_in_thread, task, backend, claim, result, None)
        abandoned = threading.Event()
        future = self.threads.submit(_attempt_in_thread, task, backend, claim, result, abandoned)
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(future)
        except TimeoutError:
            abandoned.set()
            self.abandoned_threads += 1
            exc = timeout_error(timeout)
            outcome = failure(backend, task, claim, result, exc)
            await _send(self.threads, task_finished, backend, result, exc)
            return outcome


def _attempt_in_thread(
    task: DjangoTask,
    backend: Any,
    claim: Claim,
    result: TaskResult | None,
    abandoned: threading.Event | None,
) -> Outcome:
    """One sync attempt, signals included. ``abandoned`` is set when the attempt timed out.

    ``result``: the RUNNING ``TaskResult``, or ``None`` to build it only for a signal that is
    sent, the context or a failure (built for every task: 135,000 instructions a no-op task
    instead of 117,000, callgrind)."""
    sender = type(backend)
    try:
        if result is None and (task.takes_context or wanted(task_started, sender)):
            result = _running_result(task, claim)
        if result is not None:
            _tell(task_started, backend, result)
        try:
            value = _call(task, result, claim)
            if abandoned is not None and abandoned.is_set():
                raise _Abandoned
            value, text = codec.encode_return(value)
        except (KeyboardInterrupt, _Abandoned):
            raise
        except BaseException as exc:
            if abandoned is not None and abandoned.is_set():
                raise _Abandoned from exc
            if result is None:
                result = _running_result(task, claim)
            outcome = failure(backend, task, claim, result, exc)
            _tell(task_finished, backend, result)  # inside except: the traceback is logged
            return outcome
        if result is None and wanted(task_finished, sender):
            result = _running_result(task, claim)
        outcome = success(backend, task, claim, result, value, text)
        if result is not None:
            _tell(task_finished, backend, result)
        return outcome
    finally:
        close_connections_if_used()


def _stops_the_worker(exc: BaseException) -> bool:
    """``KeyboardInterrupt``, or the worker cancelling the attempt (its drain): not a failure.

    A ``CancelledError`` that the task's own code raised (nothing cancelled the attempt) is the
    task's failure: re-raised, the worker would take it for its own shutdown and drop the claim.
    """
    if isinstance(exc, KeyboardInterrupt):
        return True
    if isinstance(exc, asyncio.CancelledError):
        current = asyncio.current_task()
        return current is None or current.cancelling() > 0
    return False


def _batch_message(claim: Claim) -> dict[str, Any]:
    """What a batch task receives per message (``enqueued_at`` as ISO 8601 text, as JSON has it)."""
    return {
        "id": claim.id, "args": claim.args, "kwargs": claim.kwargs,
        "enqueued_at": claim.enqueued_at.isoformat(), "attempt": claim.attempt,
    }  # fmt: skip


def _call_in_thread(func: Any, args: list[Any]) -> Any:
    try:
        return func(*args)
    finally:
        close_connections_if_used()


def _call_args(task: DjangoTask, result: TaskResult | None, claim: Claim) -> Any:
    if task.takes_context:
        assert result is not None  # built for the context (``_attempt_in_thread``)
        return (TaskContext(task_result=result), *claim.args)
    return claim.args


def _call(task: DjangoTask, result: TaskResult | None, claim: Claim) -> Any:
    return task.func(*_call_args(task, result, claim), **claim.kwargs)


async def _send(
    threads: ThreadRunner,
    signal: Signal,
    backend: Any,
    result: TaskResult,
    exc: BaseException | None = None,
) -> None:
    """Send a Django signal for an async task.

    Receivers are sync and may touch the database, so they run in the thread pool, with ``exc``
    re-raised there so that ``sys.exc_info()`` is set as inside an ``except`` block. Django's own
    logging receivers do no I/O: when they are the only ones, they run right here.
    """
    sender = type(backend)
    if not wanted(signal, sender, result.status == TaskResultStatus.FAILED):
        return
    if only_djangos(signal, sender):
        _send_now(signal, backend, result, exc)
        return
    await threads.submit(_send_now, signal, backend, result, exc)


def _tell(signal: Signal, backend: Any, result: TaskResult) -> None:
    """Send ``signal`` from a task's thread, unless nobody would notice (see ``receivers``)."""
    sender = type(backend)
    if wanted(signal, sender, result.status == TaskResultStatus.FAILED):
        signal.send(sender, task_result=result)


def _send_now(signal: Signal, backend: Any, result: TaskResult, exc: BaseException | None) -> None:
    if exc is None:
        signal.send(type(backend), task_result=result)
        return
    try:
        raise exc
    except BaseException:
        signal.send(type(backend), task_result=result)


def _resolve(path: str) -> DjangoTask | Exception:
    try:
        found = import_string(path)
    except ImportError as exc:
        return UnknownTask(f"task {path!r} cannot be imported: {exc}")
    if not isinstance(found, DjangoTask):
        return UnknownTask(
            f"{path!r} is {type(found).__name__}, not a function declared with @task"
        )
    if found.module_path != path:
        return UnknownTask(f"{path!r} resolves to the task {found.module_path!r}, not to itself")
    return found


def _running_result(task: DjangoTask, claim: Claim) -> TaskResult:
    if (
        claim.run_after is not None
        or claim.priority != task.priority
        or claim.queue_name != task.queue_name
    ):
        task = _with_call_options(task, claim)
    return make_result(  # in order (see ``make_result``)
        task,
        claim.id,
        TaskResultStatus.RUNNING,
        claim.enqueued_at,
        claim.started_at,
        None,  # finished_at
        claim.last_attempted_at,
        claim.args,
        claim.kwargs,
        claim.backend,
        [TaskError(**e) for e in claim.errors],
        claim.worker_ids,
    )


def _with_call_options(task: DjangoTask, claim: Claim) -> DjangoTask:
    try:
        return task.using(
            priority=claim.priority, queue_name=claim.queue_name, run_after=claim.run_after
        )
    except Exception:
        return task  # The options were valid at enqueue; the settings may have changed since.
