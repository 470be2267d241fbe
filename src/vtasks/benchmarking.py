"""The tasks ``manage.py benchmark_vtasks`` enqueues, and the measurement itself.

Importable by workers under the paths ``vtasks.benchmarking.noop`` and ``vtasks.benchmarking.nap``.
The benchmark runs its own queue (``vtasks_benchmark`` by default) with an in-process burst worker,
so it never runs an application's tasks, and never leaves its own behind unless interrupted.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vtasks.declare import task

#: Seconds the ``sleep`` task type waits: a short database query or API call.
NAP = 0.01
DEFAULT_QUEUE = "vtasks_benchmark"


@task(queue_name=DEFAULT_QUEUE)
def noop(payload: str = "") -> None:
    """Nothing: measures the queue's own cost per task."""


@task(queue_name=DEFAULT_QUEUE)
async def nap(payload: str = "") -> None:
    """An async task that waits ``NAP`` seconds: measures how concurrency hides I/O waits."""
    await asyncio.sleep(NAP)


TASKS = {"noop": noop, "sleep": nap}


@dataclass(frozen=True, slots=True, kw_only=True)
class Rates:
    count: int
    enqueue_seconds: float
    process_seconds: float
    processed: int

    @property
    def enqueue_rate(self) -> float:
        return self.count / self.enqueue_seconds if self.enqueue_seconds else float("inf")

    @property
    def process_rate(self) -> float:
        return self.processed / self.process_seconds if self.process_seconds else float("inf")


def run(
    *, backend_alias: str, count: int, concurrency: int, task_type: str, payload_size: int,
    queue: str = DEFAULT_QUEUE, batch: int = 1000,
) -> Rates:  # fmt: skip
    """Enqueue ``count`` tasks in bulk, then drain them with a burst worker; time both."""
    from django.tasks import task_backends

    from vtasks.runtime.identity import process_id
    from vtasks.serve import build_driver, serve_driver, worker_settings

    backend = task_backends[backend_alias]
    bound = TASKS[task_type].using(queue_name=queue, backend=backend_alias)
    payload = "x" * payload_size
    started = time.perf_counter()
    for start in range(0, count, batch):
        size = min(batch, count - start)
        if hasattr(backend, "enqueue_many"):
            backend.enqueue_many([(bound, (payload,), {})] * size)
        else:
            for _ in range(size):
                bound.enqueue(payload)
    enqueued = time.perf_counter()
    wsettings = worker_settings([queue], concurrency, burst=True)
    counter = _Counting(build_driver(backend_alias))
    serve_driver(counter, wsettings, process_id("benchmark"))
    return Rates(
        count=count, enqueue_seconds=enqueued - started,
        process_seconds=time.perf_counter() - enqueued, processed=counter.acked,
    )  # fmt: skip


class _Counting:
    """The worker's driver, counting the tasks that finished SUCCESSFUL (``serve_driver`` keeps
    the worker object to itself)."""

    def __init__(self, driver: Any) -> None:
        self._driver = driver
        self.acked = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._driver, name)

    async def finish(self, outcomes: Sequence[Any], process_id: str) -> list[str]:
        refused = await self._driver.finish(outcomes, process_id)
        self.acked += sum(o.status == "SUCCESSFUL" for o in outcomes) - len(refused)
        return list(refused)
