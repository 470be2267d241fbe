"""django-tasks-db: no bulk enqueue API; row counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.tasks import task_backends
from django.tasks.base import Task

BULK_API = None


def enqueue_many(task: Task, keys: Sequence[str]) -> None:
    raise NotImplementedError("django-tasks-db has no bulk enqueue")


def stored() -> int:
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.count()


def unfinished() -> int:
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.filter(status__in=("READY", "RUNNING")).count()


def describe() -> dict[str, Any]:
    return {"backend": type(task_backends["default"]).__name__}
