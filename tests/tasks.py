"""Tasks the test suite enqueues. Completions are appended to a file named by the caller when needed."""

from __future__ import annotations

import asyncio
import os
import time

from django.tasks import task

from vtasks import task as vtask
from vtasks.core.retry import ExponentialBackoff


@task
def add(a: int, b: int) -> int:
    return a + b


@task
async def async_add(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


@task
def echo(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}


@task(takes_context=True)
def with_context(context, value):
    return {"attempt": context.attempt, "id": context.task_result.id, "value": value}


@task
def fail(message: str = "boom"):
    raise ValueError(message)


@task
def exit_task():
    raise SystemExit(3)


@task
def returns_nan():
    return float("nan")


@task
def returns_object():
    return object()


@task(max_attempts=3)
def flaky(marker: str, failures: int):
    """Fails ``failures`` times (counted in a file), then succeeds."""
    count = _bump(marker)
    if count <= failures:
        raise ConnectionError(f"failure {count}")
    return count


@task(
    max_attempts=5, backoff=ExponentialBackoff(base=0.2, jitter=False, retry_on=(ConnectionError,))
)
def picky(marker: str, exc: str):
    _bump(marker)
    raise {"conn": ConnectionError, "value": ValueError}[exc]("nope")


@task
def record(path: str, token: str) -> str:
    """Append one line: how tests count executions across processes (O_APPEND writes are atomic)."""
    with open(path, "a") as fh:
        fh.write(token + "\n")
    return token


@task
def sleep_then_record(path: str, token: str, seconds: float) -> str:
    time.sleep(seconds)
    return record.func(path, token)


@task(timeout=0.3)
def slow_sync(seconds: float) -> str:
    time.sleep(seconds)
    return "done"


@task(timeout=0.3)
async def slow_async(seconds: float) -> str:
    await asyncio.sleep(seconds)
    return "done"


@vtask(unique=True)
def unique_sleep(path: str, token: str, seconds: float) -> str:
    time.sleep(seconds)
    return record.func(path, token)


def not_a_task():
    return "should never run"


def _bump(marker: str) -> int:
    with open(marker, "a") as fh:
        fh.write("x")
    return os.path.getsize(marker)


@task
def interrupt():
    raise KeyboardInterrupt


@task
def noop() -> None:
    return None


@task
async def async_noop() -> None:
    return None


@task
async def blocks_the_loop(seconds: float) -> str:
    """Wrong on purpose: ``time.sleep`` in an ``async def`` holds the worker's event loop."""
    time.sleep(seconds)
    return "unblocked"


@vtask(concurrency_key="account:{account_id}", concurrency_limit=1)
def per_account(path: str, account_id: int, seconds: float = 0.02) -> int:
    """Logs ``start <key> <ns>`` / ``end <key> <ns>`` lines around a sleep (overlap checks)."""
    key = f"account:{account_id}"
    with open(path, "a") as fh:
        fh.write(f"start {key} {time.monotonic_ns()}\n")
    time.sleep(seconds)
    with open(path, "a") as fh:
        fh.write(f"end {key} {time.monotonic_ns()}\n")
    return account_id


@vtask(concurrency_key="job:{name}", concurrency_limit=1, on_conflict="discard")
def exclusive(path: str, name: str, seconds: float = 0.0) -> str:
    time.sleep(seconds)
    return record.func(path, name)


@task
def collector_state() -> dict[str, bool]:
    """How the worker process runs its tasks: the collector on, the start-up heap frozen."""
    import gc

    return {"enabled": gc.isenabled(), "frozen": gc.get_freeze_count() > 0}
