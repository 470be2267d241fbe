"""Celery: its tasks behind the harness's ``enqueue``/``aenqueue`` calls, and the broker's counts.

Celery has no async enqueue, so ``ASYNC_API`` is ``None``. Its bulk candidates (a ``group`` of
signatures) send one message per task like a loop of ``.delay()``; see README.md for the choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from celery import group

from systems import valkey_counts
from systems.celery.app import app, noop, sleep

BULK_API = None  # A group sends one message per task: no faster than a loop of .delay().
ASYNC_API = None
_QUEUE = "celery"


class CeleryTask:
    """The harness calls ``task.enqueue(key)``; Celery's spelling is ``task.delay(key)``."""

    def __init__(self, task: Any) -> None:
        self.task = task

    def enqueue(self, key: str) -> None:
        self.task.delay(key)


def task(kind: str) -> CeleryTask:
    return CeleryTask(sleep if kind == "sleep" else noop)


def enqueue_many(task: CeleryTask, keys: Sequence[str]) -> None:
    group(task.task.s(key) for key in keys).apply_async()


def stored() -> int:
    return unfinished()


def unfinished() -> int:
    return valkey_counts.list_lengths(_QUEUE) + int(valkey_counts.client().hlen("unacked"))


def describe() -> dict[str, Any]:
    return {"broker": app.conf.broker_url, "pool": "see the worker command"}
