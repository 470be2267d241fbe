"""The Valkey backend's per-minute finish counters (the admin dashboard's throughput): what a real
worker's outcomes, a dead claimer's recovery and a revoke add to them, and what they leave out.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta
from typing import Any

from django.tasks import task_backends
from django.utils import timezone

from tests import tasks
from tests.contract.test_valkey_queues import ERROR
from tests.helpers import work
from vtasks.drivers.base import Outcome
from vtasks.drivers.valkey.client import sync_client
from vtasks.drivers.valkey.driver import ValkeyDriver
from vtasks.drivers.valkey.finished import FINISHED_TTL
from vtasks.drivers.valkey.keys import queue_keys
from vtasks.drivers.valkey.records import to_us

REVOKED = {"exception_class_path": "vtasks.compat.Revoked", "traceback": ""}


def backend() -> Any:
    return task_backends["valkey"]


def totals(counts: dict[Any, int]) -> Counter[tuple[str, str]]:
    """Per (queue, status), over the minutes."""
    out: Counter[tuple[str, str]] = Counter()
    for (queue, _minute, status), count in counts.items():
        out[queue, status] += count
    return out


def test_a_worker_counts_its_finished_tasks_per_queue_and_status(valkey: str) -> None:
    since = timezone.now() - timedelta(minutes=15)
    for _ in range(5):
        tasks.add.using(backend=valkey, queue_name="fast").enqueue(1, 2)
    for _ in range(2):
        tasks.fail.using(backend=valkey, queue_name="fast").enqueue("kaput")
    for _ in range(3):
        tasks.fail.using(backend=valkey, queue_name="slow").enqueue("kaput")
    tasks.add.using(backend=valkey, queue_name="slow").enqueue(3, 4)
    work(valkey, queues=["fast", "slow"])
    counts = backend().finished_per_minute(since)
    assert totals(counts) == {
        ("fast", "SUCCESSFUL"): 5, ("fast", "FAILED"): 2,
        ("slow", "SUCCESSFUL"): 1, ("slow", "FAILED"): 3,
    }  # fmt: skip
    now = timezone.now()
    assert all(since <= minute <= now and minute.second == 0 for _, minute, _ in counts)
    assert backend().finished_per_minute(since, ["slow"]).keys() == {
        key for key in counts if key[0] == "slow"
    }
    assert backend().finished_per_minute(now + timedelta(minutes=1)) == {}  # nothing ahead


def test_each_counter_sits_in_its_queue_slot_and_expires(valkey: str) -> None:
    result = tasks.add.using(backend=valkey, queue_name="fast").enqueue(1, 2)
    work(valkey, queues=["fast"])
    vk = backend()
    finished_at = vk.get_result(result.id).finished_at
    key = queue_keys(vk.prefix, "fast").finished(to_us(finished_at) // 60_000_000)
    assert key.startswith(f"{{{vk.prefix}:q:fast}}:m:")
    client = sync_client(vk.url, vk.cluster)
    assert client.hgetall(key) == {b"SUCCESSFUL": b"1"}
    assert FINISHED_TTL - 60 < client.ttl(key) <= FINISHED_TTL


async def _finish_batch(driver: ValkeyDriver, statuses: list[Any]) -> list[Outcome]:
    claims = await driver.claim(["batch"], len(statuses), "p-1")
    assert len(claims) == len(statuses)
    now = timezone.now()
    outcomes = [
        Outcome(
            claim=claim,
            status=status,
            finished_at=now,
            retry_at=now + timedelta(hours=1) if status == "READY" else None,
            error=None if status == "SUCCESSFUL" else ERROR,
        )  # fmt: skip
        for claim, status in zip(claims, statuses, strict=True)
    ]
    assert await driver.finish(outcomes, "p-1") == []
    return outcomes


def test_retries_are_no_finishes_and_a_batch_adds_its_sums(valkey: str) -> None:
    since = timezone.now() - timedelta(minutes=15)
    for _ in range(100):
        tasks.add.using(backend=valkey, queue_name="batch").enqueue(1, 2)
    statuses = ["SUCCESSFUL"] * 60 + ["FAILED"] * 30 + ["READY"] * 10

    async def run() -> None:
        driver: ValkeyDriver = backend().create_driver()
        await driver.open()
        try:
            outcomes = await _finish_batch(driver, statuses)
            # A late duplicate of the same batch is refused: nothing more is counted.
            assert len(await driver.finish(outcomes, "p-1")) == len(outcomes)
        finally:
            await driver.close()

    asyncio.run(run())
    assert totals(backend().finished_per_minute(since)) == {
        ("batch", "SUCCESSFUL"): 60, ("batch", "FAILED"): 30,
    }  # fmt: skip
    assert backend().queue_depths(["batch"])["batch"]["delayed"] == 10  # retrying, not counted


def test_a_dead_claimers_final_failure_and_a_revoke_count_as_failed(valkey: str) -> None:
    since = timezone.now() - timedelta(minutes=15)
    lost = tasks.add.using(backend=valkey, queue_name="lost").enqueue(1, 2).id
    revoked = tasks.add.using(backend=valkey, queue_name="lost").enqueue(3, 4).id
    vk = backend()
    client = sync_client(vk.url, vk.cluster)
    client.hset(queue_keys(vk.prefix, "lost").task(lost), "max_attempts", 1)  # no retry left

    async def run() -> list[str]:
        driver: ValkeyDriver = vk.create_driver()
        await driver.open()
        try:
            [claim] = await driver.claim(["lost"], 1, "ghost")  # never registered: dead
            assert claim.id == lost
            return (await driver.recover_dead(alive_threshold=1.0)).failed
        finally:
            await driver.close()

    assert asyncio.run(run()) == [lost]
    assert vk.revoke_waiting(revoked, REVOKED)
    assert not vk.revoke_waiting(revoked, REVOKED)  # revoked already: not counted twice
    assert totals(vk.finished_per_minute(since)) == {("lost", "FAILED"): 2}
