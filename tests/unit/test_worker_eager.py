"""Async attempts start eagerly: a claim's task runs its first step inside ``Worker._start``, so a
slot freed by a task's end starts the next task (and arms its timer) in that same step, not after
every other callback already due. Tasks that end without awaiting must not recurse or leak."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from tests.helpers import noop_claim
from vtasks.drivers.base import Claim, Outcome
from vtasks.runtime.worker import Worker, WorkerSettings


class _AsyncExecutor:
    """Declines ``start`` (as for an async task) and runs each claim by the test's script."""

    def __init__(self, worker_of: list[Worker]) -> None:
        self.worker_of = worker_of
        self.started: list[tuple[str, int]] = []  # (claim id, worker.processed at its start)
        self.gates: dict[str, asyncio.Event] = {}

    def start(self, claim: Claim, hand_over: bool = False, then: Any = None) -> None:
        return None

    async def run(self, claim: Claim) -> Outcome:
        self.started.append((claim.id, self.worker_of[0].processed))
        gate = self.gates.get(claim.id)
        if gate is not None:
            await gate.wait()
        return Outcome(claim, "SUCCESSFUL", datetime.now(UTC), "null")


def _worker(concurrency: int) -> tuple[Worker, _AsyncExecutor]:
    holder: list[Worker] = []
    executor = _AsyncExecutor(holder)
    settings = WorkerSettings(concurrency=concurrency)
    worker = Worker(None, executor, settings, "p")  # type: ignore[arg-type]
    holder.append(worker)
    return worker, executor


async def test_the_first_step_runs_inside_start():
    worker, executor = _worker(4)
    executor.gates["a"] = asyncio.Event()
    worker._start(noop_claim("a"))
    # No loop turn yet: the task has run up to its first await, and holds its slot.
    assert executor.started == [("a", 0)]
    assert [claim.id for claim in worker._running.values()] == ["a"]
    executor.gates["a"].set()
    while worker.processed == 0:
        await asyncio.sleep(0)
    assert not worker._running


async def test_a_freed_slot_starts_the_next_claim_before_the_outcome_is_recorded():
    worker, executor = _worker(1)
    executor.gates.update(a=asyncio.Event(), b=asyncio.Event())
    worker._start(noop_claim("a"))
    worker._buffer.append(noop_claim("b"))
    executor.gates["a"].set()
    while worker.processed == 0:
        await asyncio.sleep(0)
    # "b" began inside the step in which "a" ended, before "a"'s outcome was counted; a task
    # scheduled the usual way would have seen processed == 1.
    assert executor.started == [("a", 0), ("b", 0)]
    assert [claim.id for claim in worker._running.values()] == ["b"]
    executor.gates["b"].set()
    while worker.processed < 2:
        await asyncio.sleep(0)
    assert not worker._running and not worker._buffer


async def test_claims_that_never_await_neither_recurse_nor_leak_slots():
    worker, executor = _worker(4)
    n = 5000  # far past the recursion limit, were each start nested in the last one's end
    worker._buffer.extend(noop_claim(f"t{i}") for i in range(n))
    worker._fill()
    for _ in range(10 * n):  # a few complete per loop turn
        if worker.processed == n:
            break
        await asyncio.sleep(0)
    assert worker.processed == n
    assert len(worker.recorder.pending) == n
    assert not worker._running and not worker._buffer
    assert sorted(claim_id for claim_id, _ in executor.started) == sorted(f"t{i}" for i in range(n))
