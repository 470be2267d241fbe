"""A plain Celery app on the Redis broker, with the benchmark's tasks (no result backend)."""

from __future__ import annotations

import os
import time

from benchtasks.record import record
from celery import Celery

SLEEP_SECONDS = 0.05

app = Celery("bench", broker=os.environ.get("BENCH_VALKEY_URL", "redis://127.0.0.1:6379/15"))
app.conf.update(
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="bench.noop")
def noop(key: str) -> None:
    """A no-op: records its key and start time."""
    record(key)


@app.task(name="bench.sleep")
def sleep(key: str) -> None:
    """Blocks 50 ms (``time.sleep``: Celery's threads pool overlaps them), then records."""
    time.sleep(SLEEP_SECONDS)
    record(key)
