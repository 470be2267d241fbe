"""``TaskResult`` objects built fast, for arguments that are already plain JSON.

An enqueue returns a READY result per call and the worker builds a RUNNING one per task: Django's
constructor would normalise the arguments again and set each frozen field through
``object.__setattr__``. Here the slots are written directly while ``TaskResult``'s fields are
exactly the ones this code knows; any other Django version takes the constructor.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from django.tasks import TaskResult, TaskResultStatus
from django.tasks.base import Task as DjangoTask
from django.tasks.base import TaskError

_RESULT_FIELDS = {f.name for f in dataclasses.fields(TaskResult)}
_FAST_RESULTS = "__slots__" in vars(TaskResult) and _RESULT_FIELDS == {
    "task", "id", "status", "enqueued_at", "started_at", "finished_at", "last_attempted_at",
    "args", "kwargs", "backend", "errors", "worker_ids", "_return_value",
}  # fmt: skip


def make_result(
    task: DjangoTask, id: str, status: TaskResultStatus, enqueued_at: datetime | None,
    started_at: datetime | None, finished_at: datetime | None, last_attempted_at: datetime | None,
    args: list[Any], kwargs: dict[str, Any], backend: str, errors: list[TaskError], worker_ids: list[str],
) -> TaskResult:  # fmt: skip
    """A ``TaskResult`` for arguments that are already plain JSON (checked at enqueue).

    ``TaskResult.__post_init__`` would run ``normalize_json`` over them again: a fifth of a bulk
    enqueue's cost and a tenth of a worker's per task. While the fields are exactly the ones this
    code knows, they are written straight into the slots (each slot's own setter: a third of the
    cost of ``object.__setattr__`` per field); any other Django version takes the constructor.
    The hot callers pass the arguments in order: matching twelve keywords costs CPython about as
    much as the rest of this function.
    """
    if not _FAST_RESULTS:
        return TaskResult(
            task=task, id=id, status=status, enqueued_at=enqueued_at, started_at=started_at,
            finished_at=finished_at, last_attempted_at=last_attempted_at, args=args, kwargs=kwargs,
            backend=backend, errors=errors, worker_ids=worker_ids,
        )  # fmt: skip
    result = _new(TaskResult)
    _SET_TASK(result, task)
    _SET_ID(result, id)
    _SET_STATUS(result, status)
    _SET_ENQUEUED_AT(result, enqueued_at)
    _SET_STARTED_AT(result, started_at)
    _SET_FINISHED_AT(result, finished_at)
    _SET_LAST_ATTEMPTED_AT(result, last_attempted_at)
    _SET_ARGS(result, args)
    _SET_KWARGS(result, kwargs)
    _SET_BACKEND(result, backend)
    _SET_ERRORS(result, errors)
    _SET_WORKER_IDS(result, worker_ids)
    _SET_RETURN_VALUE(result, None)
    return result


def _slot_setter(name: str) -> Any:
    return getattr(TaskResult, name).__set__ if _FAST_RESULTS else None


_new = object.__new__
_SET_TASK, _SET_ID, _SET_STATUS = map(_slot_setter, ("task", "id", "status"))
_SET_ENQUEUED_AT, _SET_STARTED_AT, _SET_FINISHED_AT, _SET_LAST_ATTEMPTED_AT = map(
    _slot_setter, ("enqueued_at", "started_at", "finished_at", "last_attempted_at")
)
_SET_ARGS, _SET_KWARGS, _SET_BACKEND = map(_slot_setter, ("args", "kwargs", "backend"))
_SET_ERRORS, _SET_WORKER_IDS, _SET_RETURN_VALUE = map(
    _slot_setter, ("errors", "worker_ids", "_return_value")
)


def ready_result(
    task: DjangoTask,
    task_id: str,
    enqueued_at: datetime,
    args: list[Any],
    kwargs: dict[str, Any],
    backend: str,
) -> TaskResult:
    """The READY result an enqueue returns."""
    # In order: task, id, status, enqueued_at, started_at, finished_at, last_attempted_at, args,
    # kwargs, backend, errors, worker_ids.
    return make_result(
        task, task_id, TaskResultStatus.READY, enqueued_at, None, None, None, args, kwargs, backend,
        [], [],
    )  # fmt: skip
