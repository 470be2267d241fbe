"""The tasks every system runs: plain ``@django.tasks.task`` functions that only record."""

from __future__ import annotations

import asyncio

from django.tasks import task

from benchtasks.record import record

SLEEP_SECONDS = 0.05


@task
def noop(key: str) -> None:
    """A sync no-op: records its key and start time."""
    record(key)


@task
async def anoop(key: str) -> None:
    """An async no-op, for ``--task-kind async``."""
    record(key)


@task
async def asleep(key: str) -> None:
    """Sleeps 50 ms without blocking its event loop, then records (so the time is its end)."""
    await asyncio.sleep(SLEEP_SECONDS)
    record(key)
