"""The storage contract every driver passes: claim order, fencing, outcomes, processes, recovery.

Each test runs on the ORM driver over each database, on the psycopg driver over PostgreSQL and on
the Valkey driver. Records are enqueued through the Django backend (or edited in storage), as in
production, so the drivers are also checked against records they did not write themselves.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.tasks import task_backends
from django.utils import timezone
from psycopg.conninfo import make_conninfo

from tests import storage, tasks
from vtasks.drivers.base import Claim, Driver, Outcome, ProcessInfo
from vtasks.drivers.postgres import PostgresDriver
from vtasks.drivers.sql import SqlDriver
from vtasks.wire import codec

ALL_DRIVERS = pytest.mark.parametrize(
    ("kind", "alias"),
    [
        pytest.param("sql", "default", id="sql-sqlite"),
        pytest.param("sql", "pg", id="sql-postgres"),
        pytest.param("sql", "mysql", id="sql-mariadb"),
        pytest.param("postgres", "pg", id="postgres"),
        pytest.param("valkey", "valkey", id="valkey"),
    ],
    indirect=["alias"],
)
POSTGRES_ONLY = pytest.mark.parametrize(
    ("kind", "alias"), [pytest.param("postgres", "pg", id="postgres")], indirect=["alias"]
)
ERROR = {"exception_class_path": "builtins.ValueError", "traceback": "ValueError: boom\n"}
WORKER_LOST = "vtasks.core.errors.WorkerLost"


def build(kind: str, alias: str) -> Driver:
    if kind == "valkey":
        driver: Driver = task_backends[alias].create_driver()
        return driver
    return (
        PostgresDriver.from_django(alias)
        if kind == "postgres"
        else SqlDriver(alias, poll_interval=0.05)
    )


@pytest.fixture
async def make_driver(kind: str, alias: str) -> AsyncIterator[Callable[[], Awaitable[Driver]]]:
    """Opens drivers of this test's kind on its database; all are closed afterwards."""
    opened: list[Driver] = []

    async def make() -> Driver:
        driver = build(kind, alias)
        await driver.open()
        opened.append(driver)
        return driver

    yield make
    for driver in opened:
        await driver.close()
    await sync_to_async(connections.close_all)()  # the helpers' thread


@pytest.fixture
async def driver(make_driver: Callable[[], Awaitable[Driver]]) -> Driver:
    return await make_driver()


# -- helpers: the ORM runs in asgiref's thread, never on the event loop ----------------------------
@sync_to_async
def enqueue(alias: str, task: Any = None, args: tuple[Any, ...] = (1, 2), **using: Any) -> str:
    return (task or tasks.add).using(backend=alias, **using).enqueue(*args).id


@sync_to_async
def enqueue_many(alias: str, count: int) -> list[str]:
    task = tasks.add.using(backend=alias)
    return [
        r.id for r in task_backends[alias].enqueue_many([(task, (i, i), {}) for i in range(count)])
    ]


record = sync_to_async(storage.record)
update = sync_to_async(storage.update)
lock_exists = sync_to_async(storage.lock_exists)
process_row = sync_to_async(storage.process_row)


def outcome(claim: Claim, status: Any, **fields: Any) -> Outcome:
    fields.setdefault("finished_at", timezone.now())
    return Outcome(claim=claim, status=status, **fields)


def info(process_id: str, queues: tuple[str, ...] = ("default",)) -> ProcessInfo:
    return ProcessInfo(id=process_id, kind="worker", hostname="test-host", pid=4242, queues=queues)


async def claim_ids(
    driver: Driver, queues: list[str], limit: int, process_id: str = "p-1"
) -> list[str]:
    return [c.id for c in await driver.claim(queues, limit, process_id)]


# -- claiming --------------------------------------------------------------------------------------
@ALL_DRIVERS
class TestClaim:
    async def test_priority_first_then_fifo(self, driver: Driver, alias: str) -> None:
        order = [0, 10, 0, 10, -5, 100]
        ids = [await enqueue(alias, priority=p) for p in order]
        expected = [ids[5], ids[1], ids[3], ids[0], ids[2], ids[4]]
        assert await claim_ids(driver, ["default"], 10) == expected

    async def test_queues_in_listed_order_and_limit(self, driver: Driver, alias: str) -> None:
        low = [await enqueue(alias, queue_name="low", priority=50) for _ in range(2)]
        high = [await enqueue(alias, queue_name="high") for _ in range(2)]
        other = await enqueue(alias, queue_name="other", priority=100)
        assert await driver.claim(["high", "low"], 0, "p-1") == []
        assert await claim_ids(driver, ["high", "low"], 1) == [high[0]]
        assert await claim_ids(driver, ["high", "low"], 2) == [high[1], low[0]]
        assert await claim_ids(driver, ["high", "low"], 5) == [low[1]]
        assert await claim_ids(driver, ["high", "low"], 5) == []
        assert (await record(alias, other))["status"] == "READY"

    async def test_future_record_waits_until_due_and_next_due(
        self, driver: Driver, alias: str
    ) -> None:
        assert await driver.next_due(["default"]) is None
        soon = timezone.now() + timedelta(seconds=0.5)
        later = soon + timedelta(hours=1)
        late_id = await enqueue(alias, run_after=later)
        soon_id = await enqueue(alias, run_after=soon)
        assert await driver.next_due(["default", "other"]) == soon
        assert await driver.next_due(["other"]) is None
        assert await claim_ids(driver, ["default"], 10) == []
        await asyncio.sleep((soon - timezone.now()).total_seconds() + 0.05)
        assert await claim_ids(driver, ["default"], 10) == [soon_id]
        assert await driver.next_due(["default"]) == later  # RUNNING records are not due
        assert (await record(alias, late_id))["status"] == "READY"

    async def test_claim_takes_the_record_and_keeps_the_first_start(
        self, driver: Driver, alias: str
    ) -> None:
        task_id = await enqueue(alias, args=(3, 4))
        await update(alias, task_id, options='{"timeout":5}', max_attempts=3)
        before = await record(alias, task_id)
        [first] = await driver.claim(["default"], 5, "p-1")
        row = await record(alias, task_id)
        assert (row["status"], row["claimed_by"], row["attempts"]) == ("RUNNING", "p-1", 1)
        assert codec.loads(row["worker_ids"]) == ["p-1"] == first.worker_ids
        assert (
            row["started_at"]
            == row["last_attempted_at"]
            == first.started_at
            == first.last_attempted_at
        )
        assert (first.id, first.attempt, first.max_attempts, first.errors) == (task_id, 1, 3, [])
        assert (first.args, first.kwargs, first.options) == ([3, 4], {}, {"timeout": 5})
        assert (first.task_path, first.queue_name, first.backend) == (
            "tests.tasks.add",
            "default",
            alias,
        )
        assert (first.enqueued_at, first.run_after, first.priority) == (
            before["enqueued_at"],
            None,
            0,
        )

        await asyncio.sleep(0.01)
        assert await driver.finish([outcome(first, "READY", error=ERROR)], "p-1") == []
        [second] = await driver.claim(["default"], 5, "p-2")
        row = await record(alias, task_id)
        assert (row["claimed_by"], row["attempts"], second.attempt) == ("p-2", 2, 2)
        assert codec.loads(row["worker_ids"]) == ["p-1", "p-2"] == second.worker_ids
        assert row["started_at"] == second.started_at == first.started_at
        assert row["last_attempted_at"] == second.last_attempted_at > first.last_attempted_at
        assert second.errors == [ERROR]

    async def test_concurrent_claimers_never_share_a_record(
        self, make_driver: Any, alias: str
    ) -> None:
        ids = await enqueue_many(alias, 500)
        drivers = [await make_driver(), await make_driver()]

        async def drain(driver: Driver, process_id: str) -> list[str]:
            taken: list[str] = []
            while batch := await claim_ids(driver, ["default"], 25, process_id):
                taken += batch
            return taken

        a, b = await asyncio.gather(drain(drivers[0], "p-a"), drain(drivers[1], "p-b"))
        # Both took part (SQLite's one writer may let a claimer take all: its busy wait backs off).
        assert (a and b) or alias == "default"
        assert len(a) + len(b) == len(set(a) | set(b)) == 500
        assert set(a) | set(b) == set(ids)
        rows = await sync_to_async(storage.claimed_by)(alias)
        assert {i for i, by in rows.items() if by == "p-a"} == set(a)
        assert {i for i, by in rows.items() if by == "p-b"} == set(b)

    async def test_wait_for_work_returns_by_its_timeout(self, driver: Driver) -> None:
        started = time.monotonic()
        await driver.wait_for_work(["default"], 0.2)
        assert time.monotonic() - started < 1.0


# -- finishing -------------------------------------------------------------------------------------
@ALL_DRIVERS
class TestFinish:
    async def claimed(
        self, driver: Driver, alias: str, task: Any = None, args: tuple[Any, ...] = (1, 2)
    ) -> Claim:
        task_id = await enqueue(alias, task, args)
        [claim] = [c for c in await driver.claim(["default"], 10, "p-1") if c.id == task_id]
        return claim

    async def test_successful(self, driver: Driver, alias: str) -> None:
        claim = await self.claimed(driver, alias)
        before = await record(alias, claim.id)
        now, keep = timezone.now(), timezone.now() + timedelta(hours=1)
        done = outcome(claim, "SUCCESSFUL", finished_at=now, return_value="3", expires_at=keep)
        assert await driver.finish([done], "p-1") == []
        row = await record(alias, claim.id)
        assert (row["status"], row["claimed_by"], row["return_value"]) == ("SUCCESSFUL", None, "3")
        assert (row["finished_at"], row["expires_at"], codec.loads(row["errors"])) == (
            now,
            keep,
            [],
        )
        assert (row["available_at"], row["attempts"]) == (before["available_at"], 1)

    async def test_failed(self, driver: Driver, alias: str) -> None:
        claim = await self.claimed(driver, alias)
        now = timezone.now()
        assert (
            await driver.finish([outcome(claim, "FAILED", finished_at=now, error=ERROR)], "p-1")
            == []
        )
        row = await record(alias, claim.id)
        assert (row["status"], row["claimed_by"], row["finished_at"]) == ("FAILED", None, now)
        assert (codec.loads(row["errors"]), row["return_value"], row["expires_at"]) == (
            [ERROR],
            None,
            None,
        )

    async def test_ready_again_at_retry_at(self, driver: Driver, alias: str) -> None:
        claim = await self.claimed(driver, alias)
        retry_at = timezone.now() + timedelta(hours=1)
        assert (
            await driver.finish([outcome(claim, "READY", error=ERROR, retry_at=retry_at)], "p-1")
            == []
        )
        row = await record(alias, claim.id)
        assert (row["status"], row["claimed_by"], row["available_at"]) == ("READY", None, retry_at)
        assert (row["finished_at"], codec.loads(row["errors"])) == (None, [ERROR])
        assert await driver.claim(["default"], 10, "p-1") == []
        assert await driver.next_due(["default"]) == retry_at

    async def test_stale_fences_are_refused_and_change_nothing(
        self, driver: Driver, alias: str
    ) -> None:
        claim = await self.claimed(driver, alias)
        good = await self.claimed(driver, alias, args=(5, 6))
        before = await record(alias, claim.id)
        wrong_attempt = dataclasses.replace(claim, attempt=claim.attempt + 1)
        assert await driver.finish([outcome(claim, "SUCCESSFUL", return_value="1")], "p-2") == [
            claim.id
        ]
        assert await driver.finish([outcome(wrong_attempt, "FAILED", error=ERROR)], "p-1") == [
            claim.id
        ]
        await driver.hand_back([claim], "p-2")
        assert await record(alias, claim.id) == before
        batch = [outcome(good, "SUCCESSFUL", return_value="11"), outcome(wrong_attempt, "READY")]
        assert await driver.finish(batch, "p-1") == [claim.id]
        assert await driver.finish([outcome(good, "FAILED")], "p-1") == [good.id]
        assert (await record(alias, good.id))["status"] == "SUCCESSFUL"
        assert await record(alias, claim.id) == before

    async def test_expiring_on_arrival_deletes_a_finished_record_only(
        self, driver: Driver, alias: str
    ) -> None:
        now = timezone.now()
        claims = [await self.claimed(driver, alias, args=(i, i)) for i in range(3)]
        batch = [
            outcome(claims[0], "SUCCESSFUL", finished_at=now, return_value="0", expires_at=now),
            outcome(
                claims[1],
                "FAILED",
                finished_at=now,
                error=ERROR,
                expires_at=now - timedelta(seconds=1),
            ),
            outcome(claims[2], "READY", finished_at=now, error=ERROR, expires_at=now),
        ]
        assert await driver.finish(batch, "p-1") == []
        assert await record(alias, claims[0].id) is None
        assert await record(alias, claims[1].id) is None
        assert (await record(alias, claims[2].id))["status"] == "READY"

    async def test_final_outcome_frees_the_unique_lock(self, driver: Driver, alias: str) -> None:
        claims = [
            await self.claimed(driver, alias, tasks.unique_sleep, ("p", str(i), 0))
            for i in range(4)
        ]
        keys = [c.unique_key for c in claims]
        assert all(keys) and all([await lock_exists(alias, k) for k in keys if k])
        now = timezone.now()
        batch = [
            outcome(claims[0], "SUCCESSFUL", return_value="null"),
            outcome(claims[1], "FAILED", error=ERROR),
            outcome(claims[2], "READY", error=ERROR),
            outcome(claims[3], "SUCCESSFUL", finished_at=now, return_value="null", expires_at=now),
        ]
        assert await driver.finish(batch, "p-1") == []
        assert [await lock_exists(alias, k) for k in keys if k] == [False, False, True, False]

    async def test_hand_back_returns_claims_to_ready(self, driver: Driver, alias: str) -> None:
        ids = [await enqueue(alias) for _ in range(2)]
        claims = await driver.claim(["default"], 10, "p-1")
        await driver.hand_back(claims, "p-other")  # not its claims: nothing happens
        assert {(await record(alias, i))["status"] for i in ids} == {"RUNNING"}
        await driver.hand_back(claims, "p-1")
        for task_id in ids:
            row = await record(alias, task_id)
            assert (row["status"], row["claimed_by"]) == ("READY", None)
        assert await claim_ids(driver, ["default"], 10, "p-2") == ids
        assert await driver.finish([outcome(claims[0], "SUCCESSFUL")], "p-1") == [ids[0]]


# -- processes and recovery ------------------------------------------------------------------------
@ALL_DRIVERS
class TestProcesses:
    async def test_register_heartbeat_deregister(self, driver: Driver, alias: str) -> None:
        await driver.register(info("p-1", ("a", "b")))
        row = await process_row(alias, "p-1")
        assert (row["kind"], row["hostname"], row["pid"]) == ("worker", "test-host", 4242)
        assert codec.loads(row["queues"]) == ["a", "b"] and codec.loads(row["meta"]) == {}
        await asyncio.sleep(0.01)
        assert await driver.heartbeat("p-1") is True
        assert (await process_row(alias, "p-1"))["heartbeat_at"] > row["heartbeat_at"]
        await driver.register(info("p-1", ("c",)))  # a restart under the same id replaces the row
        assert codec.loads((await process_row(alias, "p-1"))["queues"]) == ["c"]
        await driver.deregister("p-1")
        assert await process_row(alias, "p-1") is None
        assert await driver.heartbeat("p-1") is False
        assert await driver.heartbeat("p-unknown") is False

    async def test_recover_dead_requeues_or_fails_claims_of_the_dead(
        self, driver: Driver, alias: str
    ) -> None:
        retry = await enqueue(alias)
        last = await enqueue(alias, tasks.unique_sleep, ("p", "x", 0))
        ghost = await enqueue(alias, queue_name="ghost")
        mine = await enqueue(alias, queue_name="live")
        await update(alias, retry, max_attempts=2)
        await update(alias, ghost, max_attempts=2)
        await driver.register(info("p-dead"))
        await driver.register(info("p-live"))
        dead_claims = {c.id: c for c in await driver.claim(["default"], 10, "p-dead")}
        await driver.claim(["ghost"], 1, "p-never-registered")
        await driver.claim(["live"], 1, "p-live")
        await asyncio.sleep(0.5)
        assert await driver.heartbeat("p-live")

        recovered = await driver.recover_dead(0.25)
        assert recovered.processes == ["p-dead"]
        assert sorted(recovered.requeued) == sorted([retry, ghost]) and recovered.failed == [last]
        assert await driver.heartbeat("p-dead") is False and await process_row(alias, "p-live")
        for task_id, status in [(retry, "READY"), (ghost, "READY"), (last, "FAILED")]:
            row = await record(alias, task_id)
            assert (row["status"], row["claimed_by"], row["attempts"]) == (status, None, 1)
            assert [e["exception_class_path"] for e in codec.loads(row["errors"])] == [WORKER_LOST]
            assert (row["finished_at"] is not None) == (status == "FAILED")
            if status == "READY":
                assert row["available_at"] <= timezone.now()
        assert not await lock_exists(alias, dead_claims[last].unique_key or "")
        row = await record(alias, mine)
        assert (row["status"], row["claimed_by"]) == ("RUNNING", "p-live")

        before = await record(alias, retry)
        late = outcome(dead_claims[retry], "SUCCESSFUL", return_value="3")
        assert await driver.finish([late], "p-dead") == [retry]
        assert await record(alias, retry) == before
        assert (await driver.recover_dead(0.25)).requeued == []
        [again] = await driver.claim(["default"], 10, "p-live")
        assert (again.id, again.attempt, len(again.errors)) == (retry, 2, 1)

    async def test_malformed_stored_json_stops_neither_claim_nor_recovery(
        self, driver: Driver, alias: str
    ) -> None:
        bad, good = await enqueue(alias), await enqueue(alias)
        await update(alias, bad, args="{not json", worker_ids="oops", errors="[")
        await driver.register(info("p-gone"))
        claims = {c.id: c for c in await driver.claim(["default"], 10, "p-gone")}
        assert set(claims) == {bad, good} and claims[good].problem is None
        problem = claims[bad].problem or ""
        assert all(column in problem for column in ("args", "worker_ids", "errors"))
        assert (claims[bad].worker_ids, claims[bad].errors) == (["p-gone"], [])
        assert codec.loads((await record(alias, bad))["worker_ids"]) == ["p-gone"]
        await driver.deregister("p-gone")  # its claims are orphans now
        assert sorted((await driver.recover_dead(60)).failed) == sorted([bad, good])
        errors = codec.loads((await record(alias, bad))["errors"])
        assert [e["exception_class_path"] for e in errors] == [WORKER_LOST]


# -- PostgreSQL wake-ups and reconnects ------------------------------------------------------------
@POSTGRES_ONLY
class TestPostgres:
    async def test_notify_wakes_wait_for_work(self, driver: Driver, alias: str) -> None:
        started = time.monotonic()
        await driver.wait_for_work(["default"], 0.3)  # nothing enqueued: the whole timeout
        assert time.monotonic() - started >= 0.25
        waiter = asyncio.create_task(driver.wait_for_work(["default"], 10.0))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await enqueue(alias)
        await asyncio.wait_for(waiter, 3.0)
        assert time.monotonic() - started < 2.0

    async def test_pool_and_listener_recover_when_connections_die(
        self, kind: str, alias: str
    ) -> None:
        name = f"vtasks-test-{uuid.uuid4().hex[:8]}"
        base = PostgresDriver.from_django(alias)
        driver = PostgresDriver(
            make_conninfo(base.conninfo, application_name=name), time_zone="UTC"
        )
        await driver.open()
        try:
            await driver.register(info("p-1"))
            await driver.wait_for_work(["default"], 0.05)  # opens the LISTEN connection
            assert await kill_backends(base.conninfo, name) >= 2
            with pytest.raises(psycopg.OperationalError):
                await driver.heartbeat("p-1")  # the error reaches the caller, which retries
            assert await driver.heartbeat("p-1") is True
            started = time.monotonic()
            await driver.wait_for_work(["default"], 0.3)  # a dead listener costs a poll, no error
            assert 0.25 <= time.monotonic() - started < 2.0
            waiter = asyncio.create_task(driver.wait_for_work(["default"], 10.0))
            await asyncio.sleep(0.3)
            await enqueue(alias)
            await asyncio.wait_for(waiter, 3.0)
        finally:
            await driver.close()
            await sync_to_async(connections.close_all)()


async def kill_backends(conninfo: str, application_name: str) -> int:
    """Terminate the server sessions of one application name and wait until they are gone."""
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        )
        killed = len(await cur.fetchall())
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            cur = await conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                (application_name,),
            )
            if (await cur.fetchone() or (0,))[0] == 0:
                break
            await asyncio.sleep(0.02)
    return killed
