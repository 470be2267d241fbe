"""django-vtasks: bulk enqueue and row counts (finished tasks are deleted, failed ones kept)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.tasks import task_backends
from django.tasks.base import Task

BULK_API = "backend.enqueue_many([(task, args, kwargs), ...])"


def enqueue_many(task: Task, keys: Sequence[str]) -> None:
    task_backends["default"].enqueue_many([(task, (key,), {}) for key in keys])


def stored() -> int:
    from django_vtasks.db.models import QueuedTask

    return QueuedTask.objects.count()


def unfinished() -> int:
    from django_vtasks.db.models import QueuedTask, TaskStatus

    return QueuedTask.objects.filter(status__in=(TaskStatus.QUEUED, TaskStatus.PROCESSING)).count()


def describe() -> dict[str, Any]:
    return {"backend": type(task_backends["default"]).__name__}
