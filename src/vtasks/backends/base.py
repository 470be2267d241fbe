"""``VTasksBackend``: validation, message building and ``TaskResult`` mapping shared by every backend."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import sync_to_async
from django.tasks import TaskResult, TaskResultStatus
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.base import Task as DjangoTask
from django.tasks.base import TaskError
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.tasks.signals import task_enqueued
from django.utils import timezone
from django.utils.module_loading import import_string

from vtasks.core.retry import Backoff
from vtasks.task import Task
from vtasks.wire import codec


@dataclass(frozen=True, slots=True, kw_only=True)
class NewTask:
    """Everything a backend stores for one enqueue."""

    id: str
    task: DjangoTask
    task_path: str
    args: list[Any]
    kwargs: dict[str, Any]
    enqueued_at: datetime
    max_attempts: int
    unique_key: str | None
    unique_expires_at: datetime | None
    release_unique_on_finish: bool
    #: Per-call options the worker reads from the record (the task may be redefined meanwhile).
    options: dict[str, Any]

    @property
    def available_at(self) -> datetime:
        return self.task.run_after or self.enqueued_at


class VTasksBackend(BaseTaskBackend):
    task_class = Task
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    # -- definitions ---------------------------------------------------------------------------
    def validate_task(self, task: DjangoTask) -> None:
        super().validate_task(task)
        if not isinstance(task, Task):
            return
        if task.max_attempts is not None and (
            not isinstance(task.max_attempts, int) or task.max_attempts < 1
        ):
            raise InvalidTask(f"max_attempts must be a whole number >= 1, got {task.max_attempts!r}.")
        if task.timeout is not None and not task.timeout > 0:
            raise InvalidTask(f"timeout must be a number of seconds > 0, got {task.timeout!r}.")
        if task.ttl is not None and not task.ttl > 0:
            raise InvalidTask(f"ttl must be a number of seconds > 0, got {task.ttl!r}.")
        if task.unique and not task.remove_unique_on_complete and task.ttl is None:
            raise InvalidTask("remove_unique_on_complete=False needs a ttl, or the key is held forever.")
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
    def prepare(self, task: DjangoTask, args: Sequence[Any], kwargs: dict[str, Any]) -> NewTask:
        """Validate one call and build what is stored; raises before anything is written."""
        self.validate_task(task)
        norm_args, norm_kwargs = codec.normalize_arguments(args, kwargs)
        now = timezone.now()
        unique = isinstance(task, Task) and task.unique
        key = None
        if unique:
            key = task.unique_key or _default_unique_key(task.module_path, norm_args, norm_kwargs)
        ttl = getattr(task, "ttl", None)
        return NewTask(
            id=uuid.uuid4().hex,
            task=task,
            task_path=task.module_path,
            args=norm_args,
            kwargs=norm_kwargs,
            enqueued_at=now,
            max_attempts=self.max_attempts_for(task),
            unique_key=key,
            unique_expires_at=now + timedelta(seconds=ttl) if unique and ttl else None,
            release_unique_on_finish=bool(getattr(task, "remove_unique_on_complete", True)),
            options=self.call_options(task),
        )

    def call_options(self, task: DjangoTask) -> dict[str, Any]:
        """The options a worker applies to this call: ``timeout`` and ``result_ttl`` when set."""
        options = {}
        for name, value in (("timeout", getattr(task, "timeout", None)), ("result_ttl", self.result_ttl_for(task))):
            if value is not None:
                options[name] = value
        return options

    def enqueue(self, task: DjangoTask, args: Sequence[Any], kwargs: dict[str, Any]) -> TaskResult | None:  # type: ignore[override]
        new = self.prepare(task, args, kwargs)
        if not self.store(new):
            return None
        return self._enqueued(new)

    async def aenqueue(self, task: DjangoTask, args: Sequence[Any], kwargs: dict[str, Any]) -> TaskResult | None:  # type: ignore[override]
        new = self.prepare(task, args, kwargs)
        if not await self.astore(new):
            return None
        return self._enqueued(new)

    def enqueue_many(
        self, calls: Iterable[tuple[DjangoTask, Sequence[Any], dict[str, Any]]]
    ) -> list[TaskResult | None]:
        """Enqueue many calls at once (one bulk write per queue); ``None`` for unique duplicates."""
        prepared = [self.prepare(task, args, kwargs) for task, args, kwargs in calls]
        stored = self.store_many(prepared)
        return [self._enqueued(new) if ok else None for new, ok in zip(prepared, stored, strict=True)]

    async def aenqueue_many(
        self, calls: Iterable[tuple[DjangoTask, Sequence[Any], dict[str, Any]]]
    ) -> list[TaskResult | None]:
        return await sync_to_async(self.enqueue_many, thread_sensitive=True)(list(calls))

    def _enqueued(self, new: NewTask) -> TaskResult:
        result = TaskResult(
            task=new.task,
            id=new.id,
            status=TaskResultStatus.READY,
            enqueued_at=new.enqueued_at,
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=new.args,
            kwargs=new.kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        task_enqueued.send(type(self), task_result=result)
        return result

    # -- storage, per backend ------------------------------------------------------------------
    def store(self, new: NewTask) -> bool:
        """Write one task; ``False`` when its unique key is taken."""
        raise NotImplementedError

    async def astore(self, new: NewTask) -> bool:
        return await sync_to_async(self.store, thread_sensitive=True)(new)

    def store_many(self, news: Sequence[NewTask]) -> list[bool]:
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
