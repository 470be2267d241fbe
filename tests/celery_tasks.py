"""Tasks declared with the Celery-style API (``vtasks.compat.celery``)."""

from __future__ import annotations

import os

from vtasks.compat.celery import shared_task


@shared_task
def add(a: int, b: int) -> int:
    return a + b


@shared_task(name="ignored.name", queue="celery", priority=9)
def record(path: str, token: str) -> str:
    with open(path, "a") as fh:
        fh.write(token + "\n")
    return token


@shared_task(autoretry_for=(ConnectionError,), retry_kwargs={"max_retries": 2, "countdown": 0})
def flaky(marker: str, failures: int) -> int:
    """Fails ``failures`` times with ``ConnectionError`` (counted in a file), then succeeds."""
    with open(marker, "a") as fh:
        fh.write("x")
    count = os.path.getsize(marker)
    if count <= failures:
        raise ConnectionError(f"failure {count}")
    return count


@shared_task
def fail(message: str) -> None:
    raise ValueError(message)


@shared_task
async def async_add(a: int, b: int) -> int:
    return a + b
