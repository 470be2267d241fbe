"""What only the Valkey backend and driver do: full priorities, wake-ups, the dead-letter cap,
the key layout, compressed and corrupt messages, result TTLs."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.tasks import TaskResultStatus, task_backends
from django.tasks.exceptions import TaskResultDoesNotExist
from django.utils import timezone

from tests import storage, tasks
from tests.contract.conftest import new_valkey_driver
from tests.helpers import work
from vtasks.drivers.base import Outcome
from vtasks.drivers.valkey.client import sync_client
from vtasks.drivers.valkey.driver import ValkeyDriver
from vtasks.drivers.valkey.keys import glob_escape, own_key_pattern, queue_keys
from vtasks.drivers.valkey.scripts import WAKE_CAP
from vtasks.wire import envelope

ERROR = {"exception_class_path": "builtins.ValueError", "traceback": "ValueError: boom\n"}


def _client_and_prefix() -> tuple[Any, str]:
    backend = task_backends["valkey"]
    return sync_client(backend.url), backend.prefix


@sync_to_async
def enqueue(task: Any = None, args: tuple[Any, ...] = (1, 2), **using: Any) -> str:
    return (task or tasks.add).using(backend="valkey", **using).enqueue(*args).id


async def test_full_priority_range_then_fifo(valkey_driver: ValkeyDriver) -> None:
    order = [-100, 100, 0, -100, 100, 37, -1, 1]
    ids = [await enqueue(priority=p) for p in order]
    claimed = [c.id for c in await valkey_driver.claim(["default"], 20, "p-1")]
    assert claimed == [ids[1], ids[4], ids[5], ids[7], ids[2], ids[6], ids[0], ids[3]]


async def test_two_claimers_racing_for_10000_messages_take_each_once(valkey: str) -> None:
    backend = task_backends["valkey"]
    task = tasks.add.using(backend="valkey")
    ids = await sync_to_async(
        lambda: [r.id for r in backend.enqueue_many([(task, (i, i), {}) for i in range(10_000)])]
    )()
    drivers = [new_valkey_driver(), new_valkey_driver()]
    for driver in drivers:
        await driver.open()

    async def drain(driver: ValkeyDriver, process_id: str) -> list[str]:
        taken: list[str] = []
        while batch := await driver.claim(["default"], 50, process_id):
            taken += [c.id for c in batch]
        return taken

    try:
        a, b = await asyncio.gather(drain(drivers[0], "p-a"), drain(drivers[1], "p-b"))
    finally:
        for driver in drivers:
            await driver.close()
    assert a and b and len(a) + len(b) == 10_000 and set(a) | set(b) == set(ids)
    claimers = await sync_to_async(storage.claimed_by)("valkey")
    assert {i for i, by in claimers.items() if by == "p-a"} == set(a)


async def test_an_enqueue_wakes_a_blocked_worker_at_once(valkey_driver: ValkeyDriver) -> None:
    started = time.monotonic()
    await valkey_driver.wait_for_work(["default"], 0.3)  # nothing enqueued: the whole timeout
    assert time.monotonic() - started >= 0.25
    waiter = asyncio.create_task(valkey_driver.wait_for_work(["other", "default"], 10.0))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await enqueue()
    await asyncio.wait_for(waiter, 3.0)
    assert time.monotonic() - started < 0.5


async def test_a_cancelled_wait_keeps_its_pop_for_the_next_wait(
    valkey_driver: ValkeyDriver,
) -> None:
    waiter = asyncio.create_task(valkey_driver.wait_for_work(["default"], 10.0))
    await asyncio.sleep(0.05)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    await enqueue()  # the pop still in flight takes the token ...
    started = time.monotonic()
    await valkey_driver.wait_for_work(["default"], 5.0)  # ... and the next wait returns with it
    assert time.monotonic() - started < 0.5


async def test_the_dead_letter_store_keeps_the_newest_failures(valkey: str) -> None:
    driver = new_valkey_driver(dlq_cap=3)
    await driver.open()
    try:
        ids = [await enqueue(args=(i, i)) for i in range(5)]
        claims = await driver.claim(["default"], 10, "p-1")
        now = timezone.now()
        failed = [Outcome(claim=c, status="FAILED", finished_at=now, error=ERROR) for c in claims]
        assert await driver.finish(failed, "p-1") == []
    finally:
        await driver.close()
    client, prefix = _client_and_prefix()
    dead = [i.decode() for i in client.lrange(queue_keys(prefix, "default").dead, 0, -1)]
    assert dead == ids[:1:-1]  # newest first
    assert [storage.status("valkey", i) for i in ids] == [None, None, "FAILED", "FAILED", "FAILED"]
    result = task_backends["valkey"].get_result(ids[4])
    assert [e.exception_class_path for e in result.errors] == ["builtins.ValueError"]


def test_wake_tokens_stop_at_the_cap_and_a_paused_queue_gets_none(valkey: str) -> None:
    backend = task_backends["valkey"]
    client, prefix = _client_and_prefix()
    keys = queue_keys(prefix, "default")
    task = tasks.add.using(backend="valkey")
    backend.enqueue_many([(task, (i, i), {}) for i in range(5)])
    assert client.llen(keys.wake) == 5  # one per message while there is room
    backend.enqueue_many([(task, (i, i), {}) for i in range(WAKE_CAP + 3)])
    task.enqueue(1, 1)
    assert client.llen(keys.wake) == WAKE_CAP
    client.delete(keys.wake)
    backend.pause_queue("default")
    task.enqueue(2, 2)
    assert client.llen(keys.wake) == 0
    assert client.zcard(keys.ready) == 5 + WAKE_CAP + 3 + 2  # every message is queued all the same


def test_every_key_of_a_queue_shares_its_hash_tag(valkey: str) -> None:
    tasks.add.using(backend="valkey", queue_name="q1").enqueue(1, 1)
    tasks.unique_sleep.using(backend="valkey", queue_name="q1").enqueue("/dev/null", "k", 0)
    tasks.add.using(backend="valkey", queue_name="q1", run_after=timezone.now()).enqueue(2, 2)
    tasks.fail.using(backend="valkey", queue_name="q1").enqueue()
    throttled = tasks.add.using(
        backend="valkey", queue_name="q1", unique=True, ttl=60, remove_unique_on_complete=False
    )
    throttled.enqueue(5, 5)
    work("valkey", queues=["q1"])
    client, prefix = _client_and_prefix()
    keys = {k.decode() for k in client.scan_iter(match=own_key_pattern(prefix), count=1000)}
    queue_keys_found = {k for k in keys if k.startswith(f"{{{prefix}:q:")}
    assert any(":u:" in k for k in queue_keys_found) and any(":dead" in k for k in queue_keys_found)
    assert all(k.startswith(f"{{{prefix}:q:q1}}:") for k in queue_keys_found)
    assert keys - queue_keys_found == {f"{{{prefix}}}:queues"}  # processes deregistered


def test_a_unique_key_admits_one_of_20_concurrent_enqueuers(valkey: str) -> None:
    task = tasks.add.using(backend="valkey", unique=True, unique_key="race-20")
    barrier = threading.Barrier(20)
    outcomes: list[object] = []

    def enqueue_one() -> None:
        barrier.wait()
        outcomes.append(task.enqueue(1, 1))

    threads = [threading.Thread(target=enqueue_one) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 20 and sum(o is not None for o in outcomes) == 1
    assert storage.count("valkey") == 1


def test_enqueue_many_with_unique_keys_and_several_queues(valkey: str) -> None:
    backend = task_backends["valkey"]
    unique = tasks.add.using(backend="valkey", unique=True)
    calls = [
        (unique, (1, 1), {}),
        (tasks.add.using(backend="valkey", queue_name="b"), (2, 2), {}),
        (unique, (1, 1), {}),
        (unique, (3, 3), {}),
    ]
    results = backend.enqueue_many(calls)
    assert [r is not None for r in results] == [True, True, False, True]
    assert storage.count("valkey") == 3


def test_results_expire_with_their_ttl(valkey: str) -> None:
    result = tasks.add.using(backend="valkey", result_ttl=0.3).enqueue(1, 1)
    work("valkey")
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 2
    time.sleep(0.4)
    with pytest.raises(TaskResultDoesNotExist):
        task_backends["valkey"].get_result(result.id)


def test_large_messages_are_stored_compressed_and_run(valkey: str) -> None:
    text = "compress me " * 500
    result = tasks.echo.using(backend="valkey").enqueue(text)
    client, prefix = _client_and_prefix()
    message = client.hget(queue_keys(prefix, "default").task(result.id), "msg")
    assert message[1] == envelope.ZSTD and len(message) < len(text) // 4
    work("valkey")
    result.refresh()
    assert result.return_value == {"args": [text], "kwargs": {}}


async def test_a_corrupt_message_is_claimed_with_its_problem(valkey_driver: ValkeyDriver) -> None:
    task_id = await enqueue()
    client, prefix = _client_and_prefix()
    key = queue_keys(prefix, "default").task(task_id)
    await sync_to_async(client.hset)(key, "msg", b"\x80\x04pickled")
    [claim] = await valkey_driver.claim(["default"], 5, "p-1")
    assert claim.id == task_id and "message: message version 128" in (claim.problem or "")
    done = Outcome(claim=claim, status="FAILED", finished_at=timezone.now(), error=ERROR)
    assert await valkey_driver.finish([done], "p-1") == []
    assert await sync_to_async(storage.status)("valkey", task_id) == "FAILED"


def test_purge_older_than_deletes_finished_results(valkey: str) -> None:
    done = tasks.add.using(backend="valkey").enqueue(1, 1)
    work("valkey")
    waiting = tasks.add.using(backend="valkey").enqueue(2, 2)
    time.sleep(0.05)
    from datetime import timedelta

    assert task_backends["valkey"].purge(older_than=timedelta(seconds=0.01)) == 1
    assert storage.record("valkey", done.id) is None
    assert storage.status("valkey", waiting.id) == "READY"


def test_queue_names_with_glob_characters(valkey: str) -> None:
    queue = "we*ird[1]?"
    result = tasks.add.using(backend="valkey", queue_name=queue).enqueue(2, 3)
    assert glob_escape(queue) != queue
    work("valkey", queues=[queue])
    result.refresh()
    assert result.return_value == 5


async def test_a_first_attempt_comes_back_short_a_retry_or_unique_task_in_full(
    valkey_driver: ValkeyDriver,
) -> None:
    """``claim.lua``'s rows: id, message and max_attempts for a plain first attempt; the eight
    values for anything with history or a unique key (``build_claim`` reads both)."""
    from datetime import UTC, datetime, timedelta

    from vtasks.drivers.valkey.driver import PROMOTE_MAX
    from vtasks.drivers.valkey.records import to_us
    from vtasks.drivers.valkey.scripts import SCRIPTS, Call

    retried = await enqueue(queue_name="again")
    [claim] = await valkey_driver.claim(["again"], 1, "w-1")
    now = timezone.now()
    failed = Outcome(claim, "READY", now, error=ERROR, retry_at=now - timedelta(seconds=1))
    assert await valkey_driver.finish([failed], "w-1") == []
    plain = await enqueue()
    unique = await enqueue(tasks.unique_sleep, ("p", "t", 0))
    _, prefix = _client_and_prefix()
    lengths = {}
    for queue in ("default", "again"):
        k = queue_keys(prefix, queue)
        now_us = b"%d" % to_us(datetime.now(UTC))
        call = Call(
            SCRIPTS["claim"], (k.ready, k.delayed, k.running, k.paused, k.idle, k.inbox("w-2")),
            (k.task_prefix, 10, "w-2", '"w-2"', now_us, PROMOTE_MAX),
        )  # fmt: skip
        [rows] = await valkey_driver._run([call])
        lengths.update({row[0].decode(): len(row) for row in rows})
    assert lengths == {plain: 3, unique: 8, retried: 8}
