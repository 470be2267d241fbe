"""django-vtasks on Valkey: bulk enqueue, and counts from its lists (queue, per-worker processing).

It keeps no record of a finished task, so ``stored`` counts the messages still queued or running.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.tasks import task_backends
from django.tasks.base import Task

from systems import valkey_counts

BULK_API = "backend.enqueue_many([(task, args, kwargs), ...])"
_PREFIX = "{vt}:"  # django-vtasks joins VTASKS_VALKEY_PREFIX ("{vt}") and ":"


def enqueue_many(task: Task, keys: Sequence[str]) -> None:
    task_backends["default"].enqueue_many([(task, (key,), {}) for key in keys])


def stored() -> int:
    return unfinished()


def unfinished() -> int:
    queued = valkey_counts.list_lengths(f"{_PREFIX}q:default")
    return queued + valkey_counts.list_lengths_matching(f"{_PREFIX}processing:*")


def describe() -> dict[str, Any]:
    return {"backend": type(task_backends["default"]).__name__}
