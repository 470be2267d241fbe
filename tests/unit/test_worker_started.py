"""Attempts the executor starts without a coroutine (``Executor.start``): the worker treats their
end exactly as ``_execute`` treats ``run``'s: an outcome is recorded, an error hands the claim back
before its slot frees, a KeyboardInterrupt also stops the worker, a cancel leaves it to ``_drain``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from tests.helpers import noop_claim
from vtasks.drivers.base import Claim, Outcome
from vtasks.runtime.batches import BatchQueue
from vtasks.runtime.worker import Worker, WorkerSettings


class _Executor:
    """Hands out futures the test ends (as ``ThreadRunner`` does: resolved, then ``then`` called
    on the loop); ``run`` is never expected."""

    def __init__(self) -> None:
        self.started: dict[str, asyncio.Future[Outcome]] = {}
        self.thens: dict[str, Any] = {}

    def start(
        self, claim: Claim, hand_over: bool = False, then: Any = None
    ) -> asyncio.Future[Outcome]:
        future = asyncio.get_running_loop().create_future()
        self.started[claim.id] = future
        self.thens[claim.id] = then
        return future

    def end(
        self, claim_id: str, outcome: Outcome | None = None, error: BaseException | None = None
    ) -> None:
        future = self.started[claim_id]
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(outcome)
        self.thens[claim_id](future)

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
    claim = noop_claim("a")
    worker._start(claim)
    assert list(worker._running.values()) == [claim]
    outcome = Outcome(claim, "SUCCESSFUL", datetime.now(UTC), "null")
    executor.end("a", outcome)
    await _turns()
    assert not worker._running and worker.recorder.pending == [outcome] and worker.processed == 1
    assert worker._slot_freed.is_set()


async def test_an_error_hands_the_claim_back_before_its_slot_frees():
    worker, executor, driver = _worker()
    worker._start(noop_claim("b"))
    executor.end("b", error=RuntimeError("a task_started receiver failed"))
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
    worker._start(noop_claim("c"))
    executor.end("c", error=KeyboardInterrupt())
    await _turns()
    assert worker._stopping.is_set() and driver.handed_back == ["c"] and not worker._running


async def test_an_attempt_still_running_at_the_drain_is_cancelled_and_handed_back():
    executor, driver = _Executor(), _Driver()
    settings = WorkerSettings(concurrency=4, shutdown_timeout=0.01)
    worker = Worker(driver, executor, settings, "p")  # type: ignore[arg-type]
    driver.release.set()
    worker._start(noop_claim("d"))
    worker.stop()
    await worker._drain()
    assert executor.started["d"].cancelled() and driver.handed_back == ["d"]
    assert not worker._running and not worker.recorder.pending and worker.processed == 0


class _Observer:
    def __init__(self) -> None:
        self.claimed_ids: list[str] = []

    def claimed(self, claims: list[Claim]) -> None:
        self.claimed_ids += [claim.id for claim in claims]


async def test_a_handed_claim_starts_at_once_while_a_slot_is_free():
    executor, observer = _Executor(), _Observer()
    worker = Worker(_Driver(), executor, WorkerSettings(concurrency=2), "p", observer=observer)  # type: ignore[arg-type]
    assert worker._offer(noop_claim("a")) and worker._offer(noop_claim("b"))
    assert list(executor.started) == ["a", "b"] and observer.claimed_ids == ["a", "b"]
    assert not worker._offer(noop_claim("c"))  # no slot: the next claim returns it
    assert list(executor.started) == ["a", "b"] and observer.claimed_ids == ["a", "b"]


async def test_a_handed_claim_waits_behind_claims_or_a_key_or_a_stop():
    worker, executor, _ = _worker()
    worker._buffer.append(noop_claim("first"))
    assert not worker._offer(noop_claim("a"))  # claimed earlier, not started yet: they go first
    worker._buffer.clear()
    keyed = noop_claim("b")
    keyed.options["concurrency"] = {"key": "k", "limit": 1, "on_conflict": "block"}
    assert not worker._offer(keyed)  # its slot is taken by the claim loop's admission
    worker.stop()
    assert not worker._offer(noop_claim("c"))  # stopping: put back with what was handed
    assert not executor.started


async def test_a_handed_claim_of_a_batch_queue_is_left_to_its_batch_loop():
    executor = _Executor()
    settings = WorkerSettings(concurrency=4, batch_queues={"default": BatchQueue(count=10)})
    worker = Worker(_Driver(), executor, settings, "p")  # type: ignore[arg-type]
    assert not worker._offer(noop_claim("a")) and not executor.started


async def test_only_a_claim_started_on_an_idle_worker_asks_for_a_hand_over():
    worker, executor, _ = _worker()
    hand_overs: list[bool] = []
    start = executor.start

    def recording(
        claim: Claim, hand_over: bool = False, then: Any = None
    ) -> asyncio.Future[Outcome]:
        hand_overs.append(hand_over)
        return start(claim, then=then)

    executor.start = recording  # type: ignore[method-assign]
    for name in "abc":
        worker._start(noop_claim(name))
    for name in "abc":
        executor.end(name, Outcome(noop_claim(name), "SUCCESSFUL", datetime.now(UTC), "null"))
    await _turns()
    assert not worker._running
    assert worker._offer(noop_claim("d"))  # idle again: a hand-off asks for one too
    assert hand_overs == [True, False, False, True]
