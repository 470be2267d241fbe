"""Hand-off (drivers/valkey/handoff.py): an enqueue claims a due message for a worker waiting idle.

Against the real server. A registration is made either by a real blocking wait of a registered
driver, or written straight into the idle set (a worker that is waiting, or that died waiting).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.tasks import task_backends
from django.utils import timezone

from tests import storage, tasks
from tests.contract.conftest import new_valkey_driver
from vtasks.drivers.base import Outcome, ProcessInfo
from vtasks.drivers.valkey.client import sync_client
from vtasks.drivers.valkey.driver import ValkeyDriver
from vtasks.drivers.valkey.keys import queue_keys
from vtasks.execution import Executor
from vtasks.runtime.identity import process_id
from vtasks.runtime.threads import ThreadRunner
from vtasks.runtime.worker import Worker, WorkerSettings


def _client() -> Any:
    return sync_client(task_backends["valkey"].url)


def _keys(queue: str = "default") -> Any:
    return queue_keys(task_backends["valkey"].prefix, queue)


def _info(process_id: str) -> ProcessInfo:
    return ProcessInfo(id=process_id, kind="worker", hostname="h", pid=1, queues=("default",))


@sync_to_async
def enqueue(args: tuple[Any, ...] = (1, 2)) -> str:
    return tasks.add.using(backend="valkey").enqueue(*args).id


@sync_to_async
def waiting(process_id: str, seconds: float = 60.0, queue: str = "default") -> None:
    """Write ``process_id`` into the queue's idle set for ``seconds`` (server time)."""
    client = _client()
    now_s, now_us = client.time()
    client.zadd(_keys(queue).idle, {process_id: now_s * 1000 + now_us // 1000 + seconds * 1000})


@sync_to_async
def fields(task_id: str, *names: str) -> list[str | None]:
    values = _client().hmget(_keys().task(task_id), *names)
    return [v.decode() if v is not None else None for v in values]


@sync_to_async
def inbox(process_id: str) -> list[str]:
    return [
        i.split(b"\n", 1)[0].decode() for i in _client().lrange(_keys().inbox(process_id), 0, -1)
    ]


async def blocked_wait(driver: ValkeyDriver, process_id: str) -> asyncio.Task[Any]:
    """``driver`` registered as worker ``process_id`` and blocked in a wait (idle-registered)."""
    await driver.register(_info(process_id))
    waiter = asyncio.create_task(driver.wait_for_work(["default"], 10.0))
    await asyncio.sleep(0.2)
    return waiter


async def test_a_waiting_worker_is_handed_the_message_already_claimed(
    valkey_driver: ValkeyDriver,
) -> None:
    waiter = await blocked_wait(valkey_driver, "p-1")
    started = time.monotonic()
    task_id = await enqueue()
    await asyncio.wait_for(waiter, 3.0)
    assert time.monotonic() - started < 0.5
    # Claimed by the enqueue itself, before the worker asked for anything.
    assert await fields(task_id, "status", "claimed_by", "attempts") == ["RUNNING", "p-1", "1"]
    assert task_id.encode() in _client().zrange(_keys().running, 0, -1)
    [claim] = await valkey_driver.claim(["default"], 10, "p-1")
    assert (claim.id, claim.attempt, claim.worker_ids, claim.args) == (task_id, 1, ["p-1"], [1, 2])
    assert claim.problem is None and claim.enqueued_at <= claim.started_at <= timezone.now()
    now = timezone.now()
    outcome = Outcome(claim=claim, status="SUCCESSFUL", finished_at=now, return_value="3")
    assert await valkey_driver.finish([outcome], "p-1") == []
    assert await sync_to_async(storage.status)("valkey", task_id) == "SUCCESSFUL"
    assert await valkey_driver.claim(["default"], 10, "p-1") == []


async def test_no_hand_off_behind_a_backlog_or_on_a_paused_queue(
    valkey_driver: ValkeyDriver,
) -> None:
    first = await enqueue()  # nobody waits: the ready set
    await waiting("p-1")
    second = await enqueue()  # FIFO: behind the first, not handed past it
    assert await fields(second, "status") == ["READY"] and await inbox("p-1") == []
    assert [c.id for c in await valkey_driver.claim(["default"], 10, "p-2")] == [first, second]
    await sync_to_async(task_backends["valkey"].pause_queue)("default")
    paused = await enqueue()
    assert await fields(paused, "status") == ["READY"] and await inbox("p-1") == []
    await sync_to_async(task_backends["valkey"].resume_queue)("default")
    assert [c.id for c in await valkey_driver.claim(["default"], 10, "p-2")] == [paused]
    handed = await enqueue()  # no backlog now
    assert await inbox("p-1") == [handed]
    assert await fields(handed, "status", "claimed_by") == ["RUNNING", "p-1"]
    assert _client().zcard(_keys().idle) == 0  # one hand-off per registration


async def test_a_lapsed_registration_gets_nothing(valkey_driver: ValkeyDriver) -> None:
    await waiting("p-gone", seconds=-1)
    task_id = await enqueue()
    assert await fields(task_id, "status") == ["READY"] and await inbox("p-gone") == []
    assert _client().exists(_keys().idle) == 0


async def test_a_claim_takes_the_inbox_first_and_a_full_claim_leaves_the_idle_set(
    valkey_driver: ValkeyDriver,
) -> None:
    await waiting("p-1")
    handed = await enqueue()
    queued = await enqueue()
    await waiting("p-1")
    assert [c.id for c in await valkey_driver.claim(["default"], 1, "p-1")] == [handed]
    assert _client().zscore(_keys().idle, "p-1") is None  # full: no room for a hand-off
    [claim] = await valkey_driver.claim(["default"], 5, "p-1")
    assert (claim.id, claim.attempt) == (queued, 1)


async def test_the_inbox_is_not_counted_as_stranded(valkey_driver: ValkeyDriver) -> None:
    await waiting("p-1")
    handed = await enqueue()
    assert await inbox("p-1") == [handed]
    assert await valkey_driver.held_by("p-1", ["default"]) == []


async def test_a_stopping_worker_puts_back_what_was_handed_to_it_uncounted(
    valkey_driver: ValkeyDriver,
) -> None:
    waiter = await blocked_wait(valkey_driver, "p-1")
    popped = await enqueue()  # the pop brings it: held by the driver, not claimed by anyone
    await asyncio.wait_for(waiter, 3.0)
    await waiting("p-1")
    in_inbox = await enqueue()  # still in the inbox
    assert await inbox("p-1") == [in_inbox]
    await valkey_driver.deregister("p-1")
    for task_id in (popped, in_inbox):
        assert await fields(task_id, "status", "claimed_by", "attempts", "worker_ids") == [
            "READY", None, None, None,
        ]  # fmt: skip
    assert await inbox("p-1") == [] and _client().zscore(_keys().idle, "p-1") is None
    claims = await valkey_driver.claim(["default"], 10, "p-2")
    assert sorted(c.id for c in claims) == sorted([popped, in_inbox])
    assert {(c.attempt, tuple(c.worker_ids)) for c in claims} == {(1, ("p-2",))}


async def test_the_hand_offs_of_a_worker_that_died_waiting_are_recovered_uncounted(
    valkey_driver: ValkeyDriver,
) -> None:
    await valkey_driver.register(_info("p-dead"))
    await waiting("p-dead")
    task_id = await enqueue()
    assert await inbox("p-dead") == [task_id]
    await asyncio.sleep(0.5)
    recovered = await valkey_driver.recover_dead(0.25)
    assert recovered.processes == ["p-dead"]
    assert await fields(task_id, "status", "attempts", "errors") == ["READY", None, None]
    assert await inbox("p-dead") == [] and _client().zscore(_keys().idle, "p-dead") is None
    [claim] = await valkey_driver.claim(["default"], 10, "p-2")
    assert (claim.id, claim.attempt, claim.errors) == (task_id, 1, [])


async def test_an_idle_worker_runs_what_is_handed_to_it_once(valkey: str) -> None:
    """End to end: a worker idle between enqueues is handed each message (its start time is then
    exactly its enqueue time, where a claim would stamp its own); each runs once, started from
    the pop that brought it, never kept for the next claim."""
    driver = task_backends["valkey"].create_driver()
    kept: list[str] = []
    keep = driver._handed.add
    driver._handed.add = lambda claim: (kept.append(claim.id), keep(claim))[1]
    threads = ThreadRunner(4)
    settings = WorkerSettings(queues=("default",), concurrency=4, heartbeat_interval=0.2)
    await driver.open()
    worker = Worker(driver, Executor(threads), settings, process_id("test"))
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.5)
        ids = []
        for i in range(10):
            ids.append(await enqueue((i, i)))
            await asyncio.sleep(0.05)
        for _ in range(100):
            if worker.processed == 10:
                break
            await asyncio.sleep(0.05)
    finally:
        worker.stop()
        await running
        await driver.close()
        threads.shutdown(wait=False)
    rows = [await sync_to_async(storage.record)("valkey", i) for i in ids]
    assert [(r["status"], r["attempts"]) for r in rows] == [("SUCCESSFUL", 1)] * 10
    assert worker.processed == 10
    handed = [r for r in rows if r["started_at"] == r["available_at"]]
    assert handed, "no message was handed to the idle worker"
    assert kept == []


async def test_an_idle_wait_longer_than_the_connections_timeout_blocks_without_errors(
    valkey: str, monkeypatch: Any, caplog: Any
) -> None:
    """The hand-off pop's own connection gets a deadline past the pop's blocking time, whatever
    timeout the client's connections would have (here, a default shorter than the pop)."""
    from vtasks.drivers.valkey import exchange

    monkeypatch.setattr(exchange, "_DEFAULT_SOCKET_TIMEOUT", 0.3)
    driver = new_valkey_driver(blocking_timeout=0.8)
    await driver.open()
    try:
        await driver.register(_info("p-long"))
        started = time.monotonic()
        await driver.wait_for_work(["default"], 1.0)
        assert time.monotonic() - started >= 0.95  # blocked, not failed and slept
        assert "blocking pop failed" not in caplog.text
        task_id = await enqueue()
        await driver.wait_for_work(["default"], 2.0)
        assert await fields(task_id, "claimed_by") == ["p-long"]  # handed over the same way
    finally:
        await driver.close()
