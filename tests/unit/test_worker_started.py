"""Attempts the executor starts without a coroutine (``Executor.start``): the worker treats their
end exactly as ``_execute`` treats ``run``'s: an outcome is recorded, an error hands the claim back
before its slot frees, a KeyboardInterrupt also stops the worker, a cancel leaves it to ``_drain``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from vtasks.drivers.base import Claim, Outcome
from vtasks.runtime.worker import Worker, WorkerSettings


def _claim(task_id: str) -> Claim:
    now = datetime.now(UTC)
    return Claim(
        task_id, "tests.tasks.noop", "default", 0, [], {}, "default", None, now, now, now, 1, 1,
        ["p"], [],
    )  # fmt: skip


class _Executor:
    """Hands out futures the test resolves; ``run`` is never expected."""

    def __init__(self) -> None:
        self.started: dict[str, asyncio.Future[Outcome]] = {}

    def start(self, claim: Claim) -> asyncio.Future[Outcome]:
        future = asyncio.get_running_loop().create_future()
        self.started[claim.id] = future
        return future

    async def run(self, claim: Claim) -> Outcome:  # pragma: no cover - the test would fail
        raise AssertionError("run() is for claims start() declines")


class _Driver:
    def __init__(self) -> None:
        self.handed_back: list[str] = []
        self.release = asyncio.Event()

    async def hand_back(self, claims: Any, process_id: str) -> None:
        await self.release.wait()
        self.handed_back += [claim.id for claim in claims]


def _worker() -> tuple[Worker, _Executor, _Driver]:
    executor, driver = _Executor(), _Driver()
    worker = Worker(driver, executor, WorkerSettings(concurrency=4), "p")  # type: ignore[arg-type]
    return worker, executor, driver


async def _turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_result_is_recorded_and_the_slot_freed():
    worker, executor, _ = _worker()
    claim = _claim("a")
    worker._start(claim)
    assert list(worker._running.values()) == [claim]
    outcome = Outcome(claim, "SUCCESSFUL", datetime.now(UTC), "null")
    executor.started["a"].set_result(outcome)
    await _turns()
    assert not worker._running and worker.recorder.pending == [outcome] and worker.processed == 1
    assert worker._slot_freed.is_set()


async def test_an_error_hands_the_claim_back_before_its_slot_frees():
    worker, executor, driver = _worker()
    worker._start(_claim("b"))
    executor.started["b"].set_exception(RuntimeError("a task_started receiver failed"))
    await _turns()
    assert list(worker._running.values())[0].id == "b"  # held while the hand-back runs
    assert not worker._slot_freed.is_set()
    driver.release.set()
    await _turns()
    assert driver.handed_back == ["b"] and not worker._running and not worker.recorder.pending
    assert worker._slot_freed.is_set() and not worker._stopping.is_set()


async def test_a_keyboard_interrupt_stops_the_worker_and_hands_the_claim_back():
    worker, executor, driver = _worker()
    driver.release.set()
    worker._start(_claim("c"))
    executor.started["c"].set_exception(KeyboardInterrupt())
    await _turns()
    assert worker._stopping.is_set() and driver.handed_back == ["c"] and not worker._running


async def test_a_cancelled_attempt_is_left_to_the_drain():
    worker, executor, driver = _worker()
    driver.release.set()
    worker._start(_claim("d"))
    executor.started["d"].cancel()
    await _turns()
    assert not worker._running and not worker.recorder.pending and driver.handed_back == []
    assert worker.processed == 0
