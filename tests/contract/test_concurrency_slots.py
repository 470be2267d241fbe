"""The concurrency-slot part of the driver contract: acquire, release, defer, and the reaper."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

from django.utils import timezone

from tests.contract import test_driver_contract as contract
from tests.contract.test_driver_contract import ALL_DRIVERS, ERROR, enqueue, info, outcome, record
from vtasks.drivers.base import Driver
from vtasks.wire import codec

# The contract suite's fixtures, shared (its `alias` parameter is indirect: see conftest).
make_driver = contract.make_driver
driver = contract.driver


@ALL_DRIVERS
class TestSlots:
    async def test_a_key_holds_at_most_its_limit(self, driver: Driver) -> None:
        got = await driver.acquire_slots(
            [("t1", "k", 2), ("t2", "k", 2), ("t3", "k", 2), ("u1", "other", 1)], "p-1"
        )
        assert got == [True, True, False, True]
        assert await driver.acquire_slots([("t1", "k", 2)], "p-1") == [True]  # held already
        assert await driver.acquire_slots([("t4", "k", 2)], "p-2") == [False]
        await driver.release_slots([("t1", "k")], "p-2")  # not its slot: nothing is freed
        assert await driver.acquire_slots([("t4", "k", 2)], "p-2") == [False]
        await driver.release_slots([("t1", "k"), ("u1", "other")], "p-1")
        assert await driver.acquire_slots([("t4", "k", 2), ("t5", "k", 2)], "p-2") == [
            True,
            False,
        ]
        assert await driver.acquire_slots([("u2", "other", 1), ("u3", "other", 1)], "p-2") == [
            True,
            False,
        ]
        assert await driver.acquire_slots([], "p-2") == []

    async def test_concurrent_acquirers_never_exceed_the_limit(self, make_driver) -> None:
        drivers = [await make_driver(), await make_driver()]

        async def take(driver: Driver, process_id: str) -> list[str]:
            requests = [(f"{process_id}-{i}", f"key-{i % 3}", 2) for i in range(30)]
            got = await driver.acquire_slots(requests, process_id)
            return [key for (_, key, _), ok in zip(requests, got, strict=True) if ok]

        held = sum(await asyncio.gather(take(drivers[0], "p-a"), take(drivers[1], "p-b")), [])
        assert sorted(held) == sorted(["key-0", "key-1", "key-2"] * 2)

    async def test_defer_undoes_the_claim(self, driver: Driver, alias: str) -> None:
        task_id = await enqueue(alias)
        [claim] = await driver.claim(["default"], 5, "p-1")
        until = timezone.now() + timedelta(seconds=0.8)  # a loaded machine is slow
        await driver.defer([claim], "p-other", until)  # not its claim: nothing happens
        assert (await record(alias, task_id))["status"] == "RUNNING"
        await driver.defer([claim], "p-1", until)
        row = await record(alias, task_id)
        assert (row["status"], row["claimed_by"], row["attempts"]) == ("READY", None, 0)
        assert (row["started_at"], row["last_attempted_at"]) == (None, None)
        assert codec.loads(row["worker_ids"]) == [] and codec.loads(row["errors"]) == []
        assert await driver.claim(["default"], 5, "p-2") == []
        due = await driver.next_due(["default"])
        assert due is not None and abs((due - until).total_seconds()) < 0.001
        await asyncio.sleep((until - timezone.now()).total_seconds() + 0.05)
        [again] = await driver.claim(["default"], 5, "p-2")
        assert (again.id, again.attempt, again.worker_ids) == (task_id, 1, ["p-2"])
        assert await driver.finish([outcome(claim, "SUCCESSFUL")], "p-1") == [task_id]

    async def test_defer_of_a_retry_keeps_its_history(self, driver: Driver, alias: str) -> None:
        task_id = await enqueue(alias)
        [first] = await driver.claim(["default"], 5, "p-1")
        assert await driver.finish([outcome(first, "READY", error=ERROR)], "p-1") == []
        [second] = await driver.claim(["default"], 5, "p-2")
        assert second.attempt == 2
        await driver.defer([second], "p-2", timezone.now())
        row = await record(alias, task_id)
        assert (row["status"], row["attempts"], codec.loads(row["worker_ids"])) == (
            "READY",
            1,
            ["p-1"],
        )
        assert codec.loads(row["errors"]) == [ERROR] and row["started_at"] == first.started_at
        [third] = await driver.claim(["default"], 5, "p-3")
        assert (third.attempt, third.worker_ids, third.errors) == (2, ["p-1", "p-3"], [ERROR])
        stale = dataclasses.replace(second)
        assert await driver.finish([outcome(stale, "SUCCESSFUL")], "p-2") == [task_id]

    async def test_expedite_makes_deferred_records_due_now(
        self, driver: Driver, alias: str
    ) -> None:
        waiting, running = await enqueue(alias), await enqueue(alias)
        claims = {c.id: c for c in await driver.claim(["default"], 5, "p-1")}
        later = timezone.now() + timedelta(hours=1)
        await driver.defer([claims[waiting]], "p-1", later)
        await driver.expedite([(waiting, "default")], later + timedelta(hours=1))  # never later
        assert await driver.next_due(["default"]) == later
        now = timezone.now()
        await driver.expedite([(waiting, "default"), (running, "default")], now)
        assert [c.id for c in await driver.claim(["default"], 5, "p-2")] == [waiting]
        row = await record(alias, running)
        assert (row["status"], row["claimed_by"]) == ("RUNNING", "p-1")
        await driver.expedite([], now)

    async def test_the_reaper_frees_the_slots_of_dead_processes(self, driver: Driver) -> None:
        await driver.register(info("p-dead"))
        await driver.register(info("p-live"))
        assert await driver.acquire_slots([("d1", "a", 1), ("d2", "b", 2)], "p-dead") == [
            True,
            True,
        ]
        assert await driver.acquire_slots([("l1", "b", 2), ("l2", "c", 1)], "p-live") == [
            True,
            True,
        ]
        assert await driver.acquire_slots([("n1", "d", 1)], "p-never-registered") == [True]
        await asyncio.sleep(0.5)
        assert await driver.heartbeat("p-live")
        recovered = await driver.recover_dead(0.25)
        assert recovered.processes == ["p-dead"]
        got = await driver.acquire_slots(
            [("x1", "a", 1), ("x2", "b", 2), ("x3", "c", 1), ("x4", "d", 1)], "p-live"
        )
        assert got == [True, True, False, True]
        await driver.release_slots([("l1", "b"), ("x2", "b")], "p-live")
        assert await driver.heartbeat("p-live")  # alive, however long the steps above took
        await driver.recover_dead(0.25)  # the live process keeps its slots
        assert await driver.acquire_slots([("y", "c", 1)], "p-other") == [False]
