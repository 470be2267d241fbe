"""``VTasksBackend``: validation, message building and ``TaskResult`` mapping shared by every backend."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.tasks import TaskResult, TaskResultStatus
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.base import Task as DjangoTask
from django.tasks.base import TaskError
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.tasks.signals import task_enqueued
from django.utils import timezone
from django.utils.module_loading import import_string

from vtasks.backends.concurrency import ConcurrencyPlan, plan_for
from vtasks.backends.receivers import wanted
from vtasks.backends.results import ready_result
from vtasks.config import env
from vtasks.core.errors import ConfigError, PayloadTooLarge
from vtasks.core.retry import Backoff
from vtasks.declare import Task
from vtasks.wire import codec

if TYPE_CHECKING:
    from vtasks.core.cron import Schedule


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskPlan:
    """What every call of one task shares, worked out once per backend instance."""

    task_path: str
    max_attempts: int
    #: Per-call options the worker reads from the record, as JSON text (``timeout``, ``result_ttl``).
    options_json: str
    unique: bool
    unique_ttl: float | None
    release_unique_on_finish: bool
    #: Set for a task with a ``concurrency_key``: its calls store options of their own.
    concurrency: ConcurrencyPlan | None = None


@dataclass(slots=True)
class NewTask:
    """Everything a backend stores for one enqueue (built per call, so not frozen: cheaper;
    ``prepare`` passes the fields in order, which costs CPython less than keywords)."""

    id: str
    task: DjangoTask
    plan: TaskPlan
    args: list[Any]
    kwargs: dict[str, Any]
    enqueued_at: datetime
    #: ``args`` and ``kwargs`` as JSON, from the payload check (a message embeds them).
    args_json: bytes
    kwargs_json: bytes
    unique_key: str | None = None
    unique_expires_at: datetime | None = None
    #: This call's options as JSON when they differ from ``plan.options_json`` (a concurrency key).
    options_json: str | None = None

    @property
    def available_at(self) -> datetime:
        return self.task.run_after or self.enqueued_at


class VTasksBackend(BaseTaskBackend):
    task_class = Task
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        # Verdicts and plans per task. Django builds a new backend instance when TASKS changes,
        # so nothing cached here outlives the settings it was worked out under.
        self._valid: set[DjangoTask] = set()
        self._plans: dict[DjangoTask, TaskPlan] = {}
        #: The last task planned and its plan: a loop or a bulk enqueue of one task skips the
        #: dict look-up, whose hash of the frozen ``Task`` (every field) costs about a
        #: microsecond per call. One entry: tasks made per call (``using()``) cannot pile up.
        self._last_plan: tuple[DjangoTask | None, TaskPlan | None] = (None, None)
        self.max_payload: int = env.value(env.MAX_PAYLOAD_BYTES_SETTING)

    # -- definitions ---------------------------------------------------------------------------
    def validate_task(self, task: DjangoTask) -> None:
        try:
            if task in self._valid:
                return
        except TypeError:  # An unhashable option value: validate every time.
            self._check(task)
            return
        self._check(task)
        self._valid.add(task)

    def _check(self, task: DjangoTask) -> None:
        super().validate_task(task)
        if not isinstance(task, Task):
            return
        if task.max_attempts is not None and (
            not isinstance(task.max_attempts, int) or task.max_attempts < 1
        ):
            raise InvalidTask(
                f"max_attempts must be a whole number >= 1, got {task.max_attempts!r}."
            )
        if task.timeout is not None and not task.timeout > 0:
            raise InvalidTask(f"timeout must be a number of seconds > 0, got {task.timeout!r}.")
        if task.ttl is not None and not task.ttl > 0:
            raise InvalidTask(f"ttl must be a number of seconds > 0, got {task.ttl!r}.")
        if task.unique and not task.remove_unique_on_complete and task.ttl is None:
            raise InvalidTask(
                "remove_unique_on_complete=False needs a ttl, or the key is held forever."
            )
        if task.result_ttl is not None and task.result_ttl < 0:
            raise InvalidTask(f"result_ttl must be >= 0, got {task.result_ttl!r}.")

    # -- options -------------------------------------------------------------------------------
    def max_attempts_for(self, task: DjangoTask) -> int:
        value = getattr(task, "max_attempts", None)
        return int(value if value is not None else self.options.get("MAX_ATTEMPTS", 1))

    def backoff_for(self, task: DjangoTask) -> Backoff | None:
        value = getattr(task, "backoff", None) or self.options.get("BACKOFF")
        return import_string(value) if isinstance(value, str) else value

    def result_ttl_for(self, task: DjangoTask) -> float | None:
        value = getattr(task, "result_ttl", None)
        return value if value is not None else self.options.get("RESULT_TTL")

    # -- enqueue -------------------------------------------------------------------------------
    def plan(self, task: DjangoTask) -> TaskPlan:
        """Validate ``task`` and work out what its calls share (cached per task)."""
        last, plan = self._last_plan
        if last is task and plan is not None:
            return plan
        try:
            plan = self._plans[task]
        except KeyError:
            plan = self._plans[task] = self._make_plan(task)
        except TypeError:  # An unhashable option value: no caching.
            return self._make_plan(task)
        self._last_plan = (task, plan)
        return plan

    def _make_plan(self, task: DjangoTask) -> TaskPlan:
        self.validate_task(task)
        options = self.call_options(task)
        return TaskPlan(
            task_path=task.module_path,
            max_attempts=self.max_attempts_for(task),
            options_json=codec.dumps(options),
            unique=bool(getattr(task, "unique", False)),
            unique_ttl=getattr(task, "ttl", None),
            release_unique_on_finish=bool(getattr(task, "remove_unique_on_complete", True)),
            concurrency=plan_for(task, options),
        )

    def prepare(
        self, task: DjangoTask, args: Sequence[Any], kwargs: dict[str, Any],
        task_id: str | None = None, now: datetime | None = None,
    ) -> NewTask:  # fmt: skip
        """Validate one call and build what is stored; raises before anything is written.

        A bulk enqueue passes ``task_id`` and ``now`` (by position: cheaper per call): one
        ``urandom`` and one clock read for the whole batch, not two system calls per task."""
        plan = self.plan(task)
        norm_args, norm_kwargs = codec.normalize_arguments(args, kwargs)
        args_json, kwargs_json = codec.arguments_json(norm_args, norm_kwargs)
        size = len(args_json) + len(kwargs_json)
        if size > self.max_payload:
            raise PayloadTooLarge(
                f"{plan.task_path}: the arguments encode to {size} bytes, over the "
                f"{self.max_payload}-byte cap ({env.MAX_PAYLOAD_BYTES}); pass a reference to "
                "the data (a primary key, a file name) instead"
            )
        new = NewTask(  # in order: see ``NewTask``
            task_id or os.urandom(16).hex(),
            task,
            plan,
            norm_args,
            norm_kwargs,
            now or timezone.now(),
            args_json,
            kwargs_json,
        )
        if plan.concurrency is not None:
            new.options_json = plan.concurrency.options_json(norm_args, norm_kwargs)
        if plan.unique:
            new.unique_key = getattr(task, "unique_key", None) or _default_unique_key(
                plan.task_path, norm_args, norm_kwargs
            )
            if plan.unique_ttl:
                new.unique_expires_at = new.enqueued_at + timedelta(seconds=plan.unique_ttl)
        return new

    def call_options(self, task: DjangoTask) -> dict[str, Any]:
        """The options a worker applies to this call: ``timeout`` and ``result_ttl`` when set."""
        options = {}
        for name, value in (
            ("timeout", getattr(task, "timeout", None)),
            ("result_ttl", self.result_ttl_for(task)),
        ):
            if value is not None:
                options[name] = value
        return options

    def enqueue(
        self, task: DjangoTask, args: Sequence[Any], kwargs: dict[str, Any]
    ) -> TaskResult | None:  # type: ignore[override]
        new = self.prepare(task, args, kwargs)
        if not self.store(new):
            return None
        return self._enqueued(new)

    async def aenqueue(
        self, task: DjangoTask, args: Sequence[Any], kwargs: dict[str, Any]
    ) -> TaskResult | None:  # type: ignore[override]
        new = self.prepare(task, args, kwargs)
        if not await self.astore(new):
            return None
        return self._enqueued(new)

    def enqueue_many(
        self, calls: Iterable[tuple[DjangoTask, Sequence[Any], dict[str, Any]]]
    ) -> list[TaskResult | None]:
        """Enqueue many calls at once (one bulk write per queue); ``None`` for unique duplicates."""
        calls = list(calls)
        ids, now = os.urandom(16 * len(calls)).hex(), timezone.now()
        prepared = [
            self.prepare(task, args, kwargs, ids[i * 32 : i * 32 + 32], now)
            for i, (task, args, kwargs) in enumerate(calls)
        ]
        results: list[TaskResult | None] = []

        def build_results() -> None:
            alias = self.alias  # a list, not a generator: comprehensions run inline (PEP 709)
            results.extend([
                ready_result(new.task, new.id, new.enqueued_at, new.args, new.kwargs, alias)
                for new in prepared
            ])  # fmt: skip

        stored = self.store_many(prepared, meanwhile=build_results)
        announce = wanted(task_enqueued, type(self))
        if all(stored) and not announce:  # the usual batch: nothing refused, nobody listening
            return results
        for result, ok in zip(results, stored, strict=True):
            if ok and announce:
                task_enqueued.send(type(self), task_result=result)
        return [result if ok else None for result, ok in zip(results, stored, strict=True)]

    async def aenqueue_many(
        self, calls: Iterable[tuple[DjangoTask, Sequence[Any], dict[str, Any]]]
    ) -> list[TaskResult | None]:
        return await sync_to_async(self.enqueue_many, thread_sensitive=True)(list(calls))

    def _enqueued(self, new: NewTask) -> TaskResult:
        result = ready_result(new.task, new.id, new.enqueued_at, new.args, new.kwargs, self.alias)
        if wanted(task_enqueued, type(self)):
            task_enqueued.send(type(self), task_result=result)
        return result

    # -- recurring schedules -------------------------------------------------------------------
    def scheduled_task(self, schedule: Schedule) -> DjangoTask:
        """``schedule``'s task on this backend, with its queue and priority applied."""
        try:
            task = import_string(schedule.task)
        except ImportError as exc:
            raise ConfigError(
                f"schedule {schedule.name!r}: cannot import the task {schedule.task!r}: {exc}"
            ) from None
        if not isinstance(task, DjangoTask):
            raise TypeError(
                f"schedule {schedule.name!r}: {schedule.task!r} is not a declared task "
                "(decorate the function with @task)"
            )
        return task.using(
            queue_name=schedule.queue_name, priority=schedule.priority, backend=self.alias
        )

    # -- storage, per backend ------------------------------------------------------------------
    def store(self, new: NewTask) -> bool:
        """Write one task; ``False`` when its unique key is taken."""
        raise NotImplementedError

    async def astore(self, new: NewTask) -> bool:
        return await sync_to_async(self.store, thread_sensitive=True)(new)

    def store_many(
        self, news: Sequence[NewTask], meanwhile: Callable[[], None] | None = None
    ) -> list[bool]:
        """Write ``news``; ``False`` for each whose unique key is taken.

        ``meanwhile`` is called exactly once, while the write is in flight where the store can
        wait on it (the bulk enqueue builds its results there), else before writing."""
        if meanwhile is not None:
            meanwhile()
        return [self.store(new) for new in news]

    # -- results -------------------------------------------------------------------------------
    def build_result(self, record: dict[str, Any]) -> TaskResult:
        """A ``TaskResult`` from a stored record (a mapping with the ``TaskRecord`` field names)."""
        try:
            task = import_string(record["task_path"])
        except ImportError as exc:
            raise TaskResultDoesNotExist(
                f"{record['id']}: its task {record['task_path']!r} cannot be imported ({exc})"
            ) from exc
        if not isinstance(task, DjangoTask):
            raise TaskResultDoesNotExist(f"{record['id']}: {record['task_path']!r} is not a task")
        task = task.using(
            priority=record["priority"],
            queue_name=record["queue_name"],
            run_after=record["run_after"],
            backend=self.alias,
        )
        result = TaskResult(
            task=task,
            id=record["id"],
            status=TaskResultStatus(record["status"]),
            enqueued_at=record["enqueued_at"],
            started_at=record["started_at"],
            finished_at=record["finished_at"],
            last_attempted_at=record["last_attempted_at"],
            args=_json(record["args"]),
            kwargs=_json(record["kwargs"]),
            backend=self.alias,
            errors=[TaskError(**e) for e in _json(record["errors"])],
            worker_ids=_json(record["worker_ids"]),
        )
        if record["status"] == "SUCCESSFUL" and record.get("return_value") is not None:
            object.__setattr__(result, "_return_value", _json(record["return_value"]))
        return result


def _json(value: Any) -> Any:
    return codec.loads(value) if isinstance(value, (str, bytes)) else value


def _default_unique_key(path: str, args: list[Any], kwargs: dict[str, Any]) -> str:
    digest = hashlib.sha256(codec.dumps_canonical([args, kwargs]).encode()).hexdigest()[:32]
    return f"{path[:200]}:{digest}"
