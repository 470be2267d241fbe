"""dj_queue: bulk enqueue (``enqueue_all``) and row counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.tasks import task_backends
from django.tasks.base import Task

BULK_API = "backend.enqueue_all([(task, args, kwargs), ...])"


def enqueue_many(task: Task, keys: Sequence[str]) -> None:
    task_backends["default"].enqueue_all([(task, [key], {}) for key in keys])


def stored() -> int:
    from dj_queue.models import Job

    return Job.objects.count()


def unfinished() -> int:
    from dj_queue.models import Job

    return Job.objects.filter(finished_at__isnull=True).count()


def describe() -> dict[str, Any]:
    return {"backend": type(task_backends["default"]).__name__}
