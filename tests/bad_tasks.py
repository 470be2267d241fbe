"""Tasks that misbehave in the ways that kill naive workers (tests/integration/test_bad_input.py)."""

from __future__ import annotations

import asyncio

from django.tasks import task


class Fatal(BaseException):
    """Not an ``Exception``: ``except Exception`` in a worker would let it through."""


class RaisesOnDelete:
    def __del__(self) -> None:
        raise RuntimeError("raised from __del__")


@task
def raise_base_exception() -> None:
    raise Fatal("a BaseException from a task")


@task
async def async_raise_base_exception() -> None:
    await asyncio.sleep(0)
    raise Fatal("a BaseException from an async task")


@task
def raise_system_exit() -> None:
    raise SystemExit(7)


@task
def raise_from_del() -> str:
    RaisesOnDelete()  # dropped at once: __del__ raises; Python reports it and goes on
    return "survived"


@task
async def async_raise_cancelled() -> None:
    """The task's own code raises ``CancelledError`` (an inner cancellation that escaped)."""
    await asyncio.sleep(0)
    raise asyncio.CancelledError("cancelled by the task itself")
