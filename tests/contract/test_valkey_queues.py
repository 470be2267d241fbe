"""Queue controls of the Valkey backend: depths, pause/resume, clear, dead-letter retry, and the
wake-ups that let an idle worker see retries and recovered tasks at once.

``tests/contract/test_valkey_cluster.py`` runs these again on a 3-master cluster.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.tasks import TaskResultStatus, task_backends
from django.utils import timezone

from tests import storage, tasks
from tests.helpers import work
from vtasks.drivers.base import Outcome
from vtasks.drivers.valkey.client import sync_client
from vtasks.drivers.valkey.driver import ValkeyDriver
from vtasks.drivers.valkey.keys import queue_keys
from vtasks.wire import codec

ERROR = {"exception_class_path": "builtins.ValueError", "traceback": "ValueError: boom\n"}


@pytest.fixture
async def qdriver(valkey: str) -> AsyncIterator[ValkeyDriver]:
    driver: ValkeyDriver = task_backends["valkey"].create_driver()
    await driver.open()
    yield driver
    await driver.close()


def backend() -> Any:
    return task_backends["valkey"]


def enqueue(queue: str = "default", **using: Any) -> str:
    return tasks.add.using(backend="valkey", queue_name=queue, **using).enqueue(1, 2).id


aenqueue = sync_to_async(enqueue)


async def fail_all(driver: ValkeyDriver, queue: str) -> list[str]:
    """Claim everything ready in ``queue`` and fail it for good (into the dead-letter store)."""
    claims = await driver.claim([queue], 100, "p-1")
    now = timezone.now()
    done = [Outcome(claim=c, status="FAILED", finished_at=now, error=ERROR) for c in claims]
    assert await driver.finish(done, "p-1") == []
    return [c.id for c in claims]


@sync_to_async
def drop_wake_tokens(queue: str) -> None:
    """Forget the enqueue's wake-up tokens, so that only a new one can end a wait early."""
    vk = backend()
    sync_client(vk.url, vk.cluster).delete(queue_keys(vk.prefix, queue).wake)


# -- depths ----------------------------------------------------------------------------------------
async def test_queue_depths_count_each_state(qdriver: ValkeyDriver) -> None:
    ids = [await aenqueue("a") for _ in range(5)]
    await aenqueue("a", run_after=timezone.now() + timedelta(hours=1))
    await aenqueue("b")
    [running] = await qdriver.claim(["a"], 1, "p-1")
    assert running.id == ids[0]
    [failing] = await qdriver.claim(["a"], 1, "p-1")
    now = timezone.now()
    await qdriver.finish([Outcome(claim=failing, status="FAILED", finished_at=now)], "p-1")
    await asyncio.sleep(0.2)

    depths = await sync_to_async(backend().queue_depths)()
    assert set(depths) == {"a", "b"}
    a = depths["a"]
    assert (a["ready"], a["delayed"], a["running"], a["failed"], a["paused"]) == (
        3, 1, 1, 1, False,
    )  # fmt: skip
    assert 0.15 < a["oldest_age"] < 5
    only_b = await sync_to_async(backend().queue_depths)(["b", "never-used"])
    assert only_b["b"]["ready"] == 1 and only_b["never-used"] == {
        "ready": 0, "delayed": 0, "running": 0, "failed": 0, "paused": False, "oldest_age": None,
    }  # fmt: skip


def test_oldest_age_looks_at_every_priority_band_and_due_retries(valkey: str) -> None:
    old = enqueue(priority=-50)
    time.sleep(0.3)
    enqueue(priority=50)  # claimed first, but younger: the age comes from the low band
    depths = backend().queue_depths(["default"])["default"]
    assert depths["ready"] == 2 and depths["oldest_age"] >= 0.3
    storage.update("valkey", old, available_at=timezone.now() - timedelta(seconds=30))
    assert backend().queue_depths(["default"])["default"]["oldest_age"] >= 30


async def test_a_due_retry_counts_as_ready(qdriver: ValkeyDriver) -> None:
    await aenqueue()
    [claim] = await qdriver.claim(["default"], 1, "p-1")
    due = timezone.now() - timedelta(seconds=2)
    retry = Outcome(claim=claim, status="READY", finished_at=due, retry_at=due, error=ERROR)
    await qdriver.finish([retry], "p-1")
    depth = (await sync_to_async(backend().queue_depths)(["default"]))["default"]
    assert (depth["ready"], depth["delayed"], depth["running"]) == (1, 0, 0)
    assert depth["oldest_age"] >= 2


async def test_processes_and_status_lines(qdriver: ValkeyDriver) -> None:
    from vtasks.drivers.base import ProcessInfo
    from vtasks.ops.status import status_lines

    for process_id, kind in [("w-2", "worker"), ("s-1", "scheduler"), ("w-1", "worker")]:
        info = ProcessInfo(id=process_id, kind=kind, hostname="h", pid=7, queues=("a",))
        await qdriver.register(info)
    await aenqueue("a")
    rows = await sync_to_async(backend().processes)()
    assert [(r["kind"], r["id"], r["pid"]) for r in rows] == [
        ("scheduler", "s-1", 7), ("worker", "w-1", 7), ("worker", "w-2", 7),
    ]  # fmt: skip
    assert rows[0]["heartbeat_at"] <= timezone.now()
    lines = await sync_to_async(status_lines)("valkey")
    assert any(line.startswith("  a: ready=1 delayed=0 running=0 failed=0") for line in lines)
    assert sum(" pid=7 host=h " in line for line in lines) == 3


# -- pause and resume ------------------------------------------------------------------------------
async def test_a_paused_queue_is_skipped_by_claims(qdriver: ValkeyDriver) -> None:
    paused = await aenqueue("p")
    other = await aenqueue("o")
    await sync_to_async(backend().pause_queue)("p")
    assert (await sync_to_async(backend().queue_depths)(["p"]))["p"]["paused"] is True
    assert [c.id for c in await qdriver.claim(["p", "o"], 10, "p-1")] == [other]
    assert await qdriver.next_due(["p"]) is None  # an idle worker does not spin on it
    later = await aenqueue("p")
    assert await qdriver.claim(["p"], 10, "p-1") == []
    assert await sync_to_async(backend().resume_queue)("p") is True
    assert await sync_to_async(backend().resume_queue)("p") is False
    assert [c.id for c in await qdriver.claim(["p"], 10, "p-1")] == [paused, later]


async def test_resume_wakes_an_idle_worker(qdriver: ValkeyDriver) -> None:
    await sync_to_async(backend().pause_queue)("default")
    await aenqueue()
    started = time.monotonic()
    await qdriver.wait_for_work(["default"], 0.3)  # no wake-up token for a paused queue
    assert time.monotonic() - started >= 0.25
    waiter = asyncio.create_task(qdriver.wait_for_work(["default"], 10.0))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await sync_to_async(backend().resume_queue)("default")
    await asyncio.wait_for(waiter, 3.0)
    assert time.monotonic() - started < 0.5


def test_a_burst_worker_stops_at_a_paused_queue(valkey: str) -> None:
    held = tasks.add.using(backend="valkey", queue_name="held").enqueue(1, 1)
    backend().pause_queue("held")
    assert work("valkey", queues=["held"], timeout=10).processed == 0
    backend().resume_queue("held")
    assert work("valkey", queues=["held"]).processed == 1
    held.refresh()
    assert held.status == TaskResultStatus.SUCCESSFUL


# -- clear -----------------------------------------------------------------------------------------
async def test_clear_removes_waiting_tasks_but_never_running_ones(qdriver: ValkeyDriver) -> None:
    running = await aenqueue()
    await qdriver.claim(["default"], 1, "p-1")
    waiting = [await aenqueue() for _ in range(3)]
    delayed = await aenqueue(run_after=timezone.now() + timedelta(hours=1))
    unique = await sync_to_async(
        lambda: tasks.add.using(backend="valkey", unique=True).enqueue(7, 7).id
    )()
    dead = await aenqueue("other")
    await fail_all(qdriver, "other")
    kept = await aenqueue("other")

    assert await sync_to_async(backend().clear_queue)("default") == 5
    for task_id in [*waiting, delayed, unique]:
        assert await sync_to_async(storage.record)("valkey", task_id) is None
    assert await sync_to_async(storage.status)("valkey", running) == "RUNNING"
    assert not await sync_to_async(storage.any_lock)("valkey")  # the unique key is free again
    assert await sync_to_async(backend().clear_queue)("other") == 1
    assert await sync_to_async(storage.status)("valkey", dead) == "FAILED"
    assert await sync_to_async(storage.record)("valkey", kept) is None
    assert await sync_to_async(backend().clear_queue)("other", failed=True) == 1
    assert await sync_to_async(storage.record)("valkey", dead) is None
    depths = await sync_to_async(backend().queue_depths)()
    assert depths["default"]["running"] == 1 and depths["default"]["ready"] == 0
    assert depths["other"]["failed"] == 0


def test_clear_works_through_more_than_one_batch(valkey: str) -> None:
    task = tasks.add.using(backend="valkey", queue_name="big")
    backend().enqueue_many([(task, (i, i), {}) for i in range(2500)])
    assert backend().clear_queue("big") == 2500
    assert storage.count("valkey") == 0


# -- dead-letter retry -----------------------------------------------------------------------------
async def test_retry_failed_puts_a_task_back_with_its_errors(qdriver: ValkeyDriver) -> None:
    task_id = await aenqueue()
    await fail_all(qdriver, "default")
    assert await sync_to_async(backend().retry_failed)(task_id) is True
    assert await sync_to_async(backend().retry_failed)(task_id) is False  # READY now
    assert await sync_to_async(backend().retry_failed)("no-such-task") is False
    row = await sync_to_async(storage.record)("valkey", task_id)
    assert (row["status"], row["finished_at"], row["expires_at"]) == ("READY", None, None)
    assert codec.loads(row["errors"]) == [ERROR]
    assert (await sync_to_async(backend().queue_depths)(["default"]))["default"]["failed"] == 0
    [again] = await qdriver.claim(["default"], 10, "p-2")
    assert (again.id, again.attempt, again.errors) == (task_id, 2, [ERROR])


async def test_retry_all_failed_keeps_order_and_unique_keys(qdriver: ValkeyDriver) -> None:
    ids = [await aenqueue("dlq") for _ in range(3)]
    unique = tasks.add.using(backend="valkey", queue_name="dlq", unique=True)
    first = (await sync_to_async(unique.enqueue)(9, 9)).id
    await fail_all(qdriver, "dlq")
    taken = (await sync_to_async(unique.enqueue)(9, 9)).id  # the key is free: a new holder
    assert await sync_to_async(backend().retry_all_failed)("dlq") == 3
    assert await sync_to_async(storage.status)("valkey", first) == "FAILED"  # key held by taken
    claimed = [c.id for c in await qdriver.claim(["dlq"], 10, "p-2")]
    assert claimed == [*ids, taken]
    assert await sync_to_async(backend().retry_all_failed)("dlq") == 0
    assert (await sync_to_async(backend().queue_depths)(["dlq"]))["dlq"]["failed"] == 1


def test_a_retried_dead_letter_runs_to_success(valkey: str, tmp_path: Any) -> None:
    marker = str(tmp_path / "marker")
    result = tasks.flaky.using(backend="valkey").enqueue(marker, 3)
    work("valkey")
    result.refresh()
    assert result.status == TaskResultStatus.FAILED and result.attempts == 3
    assert backend().retry_failed(result.id)
    work("valkey")
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 4
    assert result.attempts == 4 and len(result.errors) == 3


# -- wake-ups for retries and recoveries -----------------------------------------------------------
async def test_a_due_retry_wakes_an_idle_worker_at_once(valkey: str) -> None:
    vk = backend()  # each pop blocks 5 s: only a wake-up token ends the wait early
    drivers = [
        ValkeyDriver(vk.url, prefix=vk.prefix, blocking_timeout=5.0, cluster=vk.cluster)
        for _ in range(2)
    ]
    for driver in drivers:
        await driver.open()
    try:
        await aenqueue()
        [claim] = await drivers[0].claim(["default"], 1, "p-1")
        await drop_wake_tokens("default")
        idle = asyncio.create_task(drivers[1].wait_for_work(["default"], 10.0))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        now = timezone.now()
        retry = Outcome(claim=claim, status="READY", finished_at=now, retry_at=now, error=ERROR)
        assert await drivers[0].finish([retry], "p-1") == []
        await asyncio.wait_for(idle, 3.0)
        [again] = await drivers[1].claim(["default"], 1, "p-2")
        assert again.id == claim.id and time.monotonic() - started < 0.5
    finally:
        for driver in drivers:
            await driver.close()


async def test_a_recovered_task_wakes_an_idle_worker(qdriver: ValkeyDriver) -> None:
    await sync_to_async(storage.update)("valkey", await aenqueue(), max_attempts=2)
    await qdriver.claim(["default"], 1, "p-gone")
    await drop_wake_tokens("default")
    waiter = asyncio.create_task(qdriver.wait_for_work(["default"], 10.0))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    assert len((await qdriver.recover_dead(60)).requeued) == 1
    await asyncio.wait_for(waiter, 3.0)
    assert time.monotonic() - started < 0.5


async def test_an_idle_worker_runs_a_0_delay_retry_well_within_its_poll(
    valkey: str, tmp_path: Any, settings_override: Any
) -> None:
    """A real worker that polls every 5 s (and blocks 5 s per pop) still retries at once."""
    from vtasks.execution import Executor
    from vtasks.runtime.threads import ThreadRunner
    from vtasks.runtime.worker import Worker, WorkerSettings

    settings_override("valkey", BACKOFF="vtasks.core.retry.no_delay", BLOCKING_TIMEOUT=5.0)
    driver = task_backends["valkey"].create_driver()
    threads = ThreadRunner(2)
    settings = WorkerSettings(concurrency=2, idle_wait=5.0, heartbeat_interval=1.0)
    worker = Worker(driver, Executor(threads), settings, "p-retry")
    await driver.open()
    running = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0.3)  # the worker is idle, blocked on its wake list
        started = time.monotonic()
        flaky = tasks.flaky.using(backend="valkey", max_attempts=2)
        result = await flaky.aenqueue(str(tmp_path / "marker"), 1)
        await result.arefresh()
        while result.status != TaskResultStatus.SUCCESSFUL:
            assert time.monotonic() - started < 2.0, result.status
            await asyncio.sleep(0.02)
            await result.arefresh()
        assert result.attempts == 2 and time.monotonic() - started < 1.0
    finally:
        worker.stop()
        await asyncio.wait_for(running, 10)
        await driver.close()
        threads.shutdown(wait=False)
