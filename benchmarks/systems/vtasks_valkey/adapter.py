"""vtasks on Valkey: bulk enqueue, and counts from its keys (one hash per task, zsets per state)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.tasks import task_backends
from django.tasks.base import Task

from systems import valkey_counts

BULK_API = "backend.enqueue_many([(task, args, kwargs), ...])"
_TAG = "{vt:q:default}"


def enqueue_many(task: Task, keys: Sequence[str]) -> None:
    task_backends["default"].enqueue_many([(task, (key,), {}) for key in keys])


def stored() -> int:
    return valkey_counts.count_keys(f"{_TAG}:t:*")


def unfinished() -> int:
    return valkey_counts.zset_sizes(f"{_TAG}:ready", f"{_TAG}:running", f"{_TAG}:delayed")


def describe() -> dict[str, Any]:
    driver = task_backends["default"].create_driver()
    return {"driver": f"{type(driver).__module__}.{type(driver).__qualname__}"}
