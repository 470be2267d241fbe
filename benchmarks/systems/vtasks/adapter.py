"""vtasks: bulk enqueue and row counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.tasks import task_backends
from django.tasks.base import Task

BULK_API = "backend.enqueue_many([(task, args, kwargs), ...])"


def enqueue_many(task: Task, keys: Sequence[str]) -> None:
    task_backends["default"].enqueue_many([(task, (key,), {}) for key in keys])


def stored() -> int:
    from vtasks.models import TaskRecord

    return TaskRecord.objects.count()


def unfinished() -> int:
    from vtasks.models import TaskRecord

    return TaskRecord.objects.filter(status__in=("READY", "RUNNING")).count()


def describe() -> dict[str, Any]:
    driver = task_backends["default"].create_driver()
    return {"driver": f"{type(driver).__module__}.{type(driver).__qualname__}"}
