"""The no-op tasks every system runs: plain ``@django.tasks.task`` functions that only record."""

from __future__ import annotations

from django.tasks import task

from benchtasks.record import record


@task
def noop(key: str) -> None:
    """A sync no-op: records its key and start time."""
    record(key)


@task
async def anoop(key: str) -> None:
    """An async no-op, for ``--task-kind async``."""
    record(key)
