"""``PostgresDriver``: the ``Driver`` protocol on psycopg 3's async connection pool.

Same tables and the same semantics as the ORM driver (``SqlDriver``), with fewer round trips: a
claim is one ``UPDATE ... FOR UPDATE SKIP LOCKED`` statement per queue, a batch of outcomes is one
statement, and an idle worker wakes on ``NOTIFY vtasks`` instead of waiting for its next poll.
Timestamps come from Python (``timezone.now()``), as in the Django backend that inserts the rows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, LiteralString

import psycopg
from django.utils import timezone
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from vtasks.drivers.base import Claim, ClaimRef, Outcome, ProcessInfo, Recovered
from vtasks.drivers.paused import PausedQueues
from vtasks.drivers.postgres import conninfo as _conninfo
from vtasks.drivers.postgres.listener import Listener
from vtasks.drivers.postgres.queries import QUERIES
from vtasks.drivers.records import (
    claim_from_row,
    decode_stored,
    outcome_changes,
    worker_lost_error,
)
from vtasks.wire import codec

logger = logging.getLogger("vtasks.postgres")

Row = dict[str, Any]


class PostgresDriver:
    """A ``Driver`` for PostgreSQL. Build it with ``from_django(alias)``; ``open()`` connects."""

    def __init__(
        self,
        conninfo: str,
        *,
        time_zone: str = "UTC",
        prepare_threshold: int | None = 5,
        min_size: int = 1,
        max_size: int = 4,
        timeout: float = 10.0,
    ) -> None:
        # No I/O here: the pool (and its event-loop-bound tasks) is built in open(), after fork.
        self.conninfo = conninfo
        self.time_zone = time_zone
        self.prepare_threshold = prepare_threshold
        self.min_size = min_size
        self.max_size = max_size
        self.timeout = timeout
        self._pool: AsyncConnectionPool | None = None
        self._listener = Listener(conninfo)
        self._listening = True
        self._paused = PausedQueues()

    @classmethod
    def from_django(cls, db_alias: str = "default", **options: Any) -> PostgresDriver:
        """A driver for ``settings.DATABASES[db_alias]``; ``options`` go to ``__init__``."""
        database = _conninfo.from_django(db_alias)
        options.setdefault("time_zone", database.time_zone)
        options.setdefault("prepare_threshold", database.prepare_threshold)
        return cls(database.conninfo, **options)

    # -- plumbing ------------------------------------------------------------------------------
    async def open(self) -> None:
        """Open the pool, failing (``PoolTimeout``) when no connection comes within ``timeout``."""
        if self._pool is not None:
            return
        pool: AsyncConnectionPool = AsyncConnectionPool(
            self.conninfo,
            kwargs={"autocommit": True, "prepare_threshold": self.prepare_threshold},
            min_size=self.min_size,
            max_size=self.max_size,
            timeout=self.timeout,
            configure=self._configure,
            open=False,
            name="vtasks",
        )
        try:
            await pool.open(wait=True, timeout=self.timeout)
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        await self._listener.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _configure(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(QUERIES["set_time_zone"], {"time_zone": self.time_zone})

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection. Errors propagate; after a connection error the idle connections
        are checked, so a restarted server costs one failed call, not one per pooled socket."""
        if self._pool is None:
            raise RuntimeError("PostgresDriver.open() was not awaited")
        pool = self._pool
        try:
            async with pool.connection() as conn:
                yield conn
        except psycopg.OperationalError:
            try:
                await pool.check()
            except Exception:  # The original error is the one worth raising.
                logger.exception("vtasks: checking the pool after a connection error failed")
            raise

    async def _fetch(self, query: LiteralString, params: dict[str, Any]) -> list[Row]:
        async with self._connection() as conn:
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(query, params)
                return await cur.fetchall() if cur.description else []

    async def _execute(self, query: LiteralString, params: dict[str, Any]) -> int:
        async with self._connection() as conn:
            cur = await conn.execute(query, params)
            return cur.rowcount

    # -- claim and finish ----------------------------------------------------------------------
    async def claim(self, queues: Sequence[str], limit: int, process_id: str) -> list[Claim]:
        queues = list(await self._unpaused(queues))
        if limit <= 0 or not queues:
            return []
        now = timezone.now()
        async with self._connection() as conn:
            if len(queues) == 1:  # One statement is atomic in autocommit: no BEGIN/COMMIT trips.
                return await _claim_queue(conn, queues[0], limit, process_id, now)
            claims: list[Claim] = []
            # One transaction, so a failure part-way leaves no claim behind that nobody runs.
            async with conn.transaction():
                for queue in queues:
                    if len(claims) >= limit:
                        break
                    claims += await _claim_queue(conn, queue, limit - len(claims), process_id, now)
            return claims

    async def claim_by_priority(
        self, queues: Sequence[str], limit: int, process_id: str
    ) -> list[Claim]:
        queues = list(await self._unpaused(queues))
        if limit <= 0 or not queues:
            return []
        now = timezone.now()
        params = {"queues": queues, "limit": limit, "process_id": process_id, "now": now}
        rows = await self._fetch(QUERIES["claim_by_priority"], params)
        rows.sort(key=lambda row: (-row["priority"], row["seq"]))
        return [claim_from_row(row, process_id, now)[0] for row in rows]

    async def known_queues(self) -> list[str]:
        return [row["queue_name"] for row in await self._fetch(QUERIES["known_queues"], {})]

    async def finish(self, outcomes: Sequence[Outcome], process_id: str) -> list[str]:
        if not outcomes:
            return []
        params: dict[str, Any] = {
            "process_id": process_id,
            "outcomes": _outcome_rows(_first_of_each(outcomes)),
        }
        applied = {row["id"] for row in await self._fetch(QUERIES["finish"], params)}
        refused: list[str] = []
        seen: set[str] = set()
        for outcome in outcomes:
            # A repeated id is refused, as in SqlDriver: the first outcome moved the record on.
            if outcome.claim.id in seen or outcome.claim.id not in applied:
                refused.append(outcome.claim.id)
            seen.add(outcome.claim.id)
        return refused

    async def held_by(self, process_id: str, queues: Sequence[str]) -> list[ClaimRef]:
        rows = await self._fetch(
            QUERIES["held_by"], {"process_id": process_id, "queues": list(queues)}
        )
        return [ClaimRef(row["id"], row["queue_name"], row["attempts"]) for row in rows]

    async def hand_back(self, claims: Sequence[Claim | ClaimRef], process_id: str) -> None:
        if not claims:
            return
        await self._execute(
            QUERIES["hand_back"],
            {
                "ids": [c.id for c in claims],
                "attempts": [c.attempt for c in claims],
                "process_id": process_id,
            },
        )

    async def defer(self, claims: Sequence[Claim], process_id: str, until: datetime) -> None:
        if not claims:
            return
        await self._execute(
            QUERIES["defer"],
            {
                "ids": [c.id for c in claims],
                "attempts": [c.attempt for c in claims],
                "worker_ids": [codec.dumps(c.worker_ids[:-1]) for c in claims],
                "process_id": process_id,
                "until": until,
            },
        )

    async def expedite(self, tasks: Sequence[tuple[str, str]], at: datetime) -> None:
        if tasks:
            ids = [task_id for task_id, _ in tasks]
            await self._execute(QUERIES["expedite"], {"ids": ids, "at": at})

    # -- concurrency slots ---------------------------------------------------------------------
    async def acquire_slots(
        self, requests: Sequence[tuple[str, str, int]], process_id: str
    ) -> list[bool]:
        if not requests:
            return []
        params = {
            "task_ids": [task_id for task_id, _, _ in requests],
            "keys": [key for _, key, _ in requests],
            "limits": [limit for _, _, limit in requests],
            "process_id": process_id,
        }
        got = {row["task_id"] for row in await self._fetch(QUERIES["acquire_slots"], params)}
        return [task_id in got for task_id, _, _ in requests]

    async def release_slots(self, slots: Sequence[tuple[str, str]], process_id: str) -> None:
        if slots:
            ids = [task_id for task_id, _ in slots]
            await self._execute(QUERIES["release_slots"], {"ids": ids, "process_id": process_id})

    async def next_due(self, queues: Sequence[str]) -> datetime | None:
        serving = list(await self._unpaused(queues))
        if not serving:
            return None
        rows = await self._fetch(QUERIES["next_due"], {"queues": serving})
        return rows[0]["due"] if rows else None

    async def _unpaused(self, queues: Sequence[str]) -> Sequence[str]:
        """``queues`` but the paused ones, re-read at most once a second (``drivers.paused``)."""
        if self._paused.stale():
            try:
                rows = await self._fetch(QUERIES["paused_queues"], {})
                self._paused.update(row["queue_name"] for row in rows)
            except psycopg.Error as exc:
                self._paused.failed(exc)
        return self._paused.serve(queues)

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> None:
        """Return on a ``NOTIFY vtasks`` or after ``timeout``; a listen problem just sleeps."""
        if timeout <= 0:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            await self._listener.wait(timeout)
            self._listening = True
        except (psycopg.Error, OSError) as exc:
            if self._listening:  # Log each outage once, not on every idle poll.
                logger.warning(
                    "vtasks: LISTEN connection failed (%s); polling until it is back", exc
                )
            self._listening = False
            await self._listener.close()
            await asyncio.sleep(max(0.0, deadline - loop.time()))

    # -- processes -----------------------------------------------------------------------------
    async def register(self, info: ProcessInfo) -> None:
        await self._execute(
            QUERIES["register"],
            {
                "id": info.id, "kind": info.kind, "hostname": info.hostname, "pid": info.pid,
                "queues": codec.dumps(list(info.queues)), "meta": codec.dumps(info.meta),
                "now": timezone.now(),
            },
        )  # fmt: skip

    async def heartbeat(self, process_id: str) -> bool:
        updated = await self._execute(
            QUERIES["heartbeat"], {"id": process_id, "now": timezone.now()}
        )
        return updated > 0

    async def deregister(self, process_id: str) -> None:
        await self._execute(QUERIES["deregister"], {"id": process_id})

    async def recover_dead(self, alive_threshold: float) -> Recovered:
        now = timezone.now()
        cutoff = now - timedelta(seconds=alive_threshold)
        rows = await self._fetch(QUERIES["find_orphans"], {"cutoff": cutoff})
        dead = [row["id"] for row in rows if row["kind"] == "process"]
        orphans = [row for row in rows if row["kind"] == "task"]
        if not orphans:
            return Recovered(processes=dead, requeued=[], failed=[])
        # Without a lock between the two statements, the fence in release_orphans decides: a
        # record finished or released meanwhile is skipped, and only what applied is reported.
        released = await self._fetch(QUERIES["release_orphans"], _orphan_columns(orphans, now))
        status = {row["id"]: row["status"] for row in released}
        return Recovered(
            processes=dead,
            requeued=[o["id"] for o in orphans if status.get(o["id"]) == "READY"],
            failed=[o["id"] for o in orphans if status.get(o["id"]) == "FAILED"],
        )


async def _claim_queue(
    conn: psycopg.AsyncConnection[Any], queue: str, limit: int, process_id: str, now: datetime
) -> list[Claim]:
    params = {"queue": queue, "limit": limit, "process_id": process_id, "now": now}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(QUERIES["claim"], params)
        rows = await cur.fetchall()
    # UPDATE ... RETURNING gives no order: restore the claim order.
    rows.sort(key=lambda row: (-row["priority"], row["seq"]))
    # The rows hold the values from before the update, as SqlDriver reads them.
    return [claim_from_row(row, process_id, now)[0] for row in rows]


def _first_of_each(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """The first outcome of each claim id (one statement may not update a row twice)."""
    seen: set[str] = set()
    first: list[Outcome] = []
    for outcome in outcomes:
        if outcome.claim.id not in seen:
            seen.add(outcome.claim.id)
            first.append(outcome)
    return first


def _outcome_rows(outcomes: Sequence[Outcome]) -> str:
    """The batch as one JSON array for ``jsonb_to_recordset``, values as ``outcome_changes`` has them."""
    rows = []
    for outcome in outcomes:
        changes = outcome_changes(outcome)
        rows.append(
            {
                "id": outcome.claim.id,
                "attempt": outcome.claim.attempt,
                "status": changes["status"],
                "errors": changes["errors"],
                "available_at": changes.get("available_at"),
                "finished_at": changes.get("finished_at"),
                "return_value": changes.get("return_value"),
                "expires_at": changes.get("expires_at"),
                "unique_key": outcome.claim.unique_key,
                "drop_now": _drops_now(outcome),
            }
        )
    return codec.dumps(rows)


def _drops_now(outcome: Outcome) -> bool:
    """A final outcome that expires on arrival deletes its record (a READY one never does)."""
    return (
        outcome.status != "READY"
        and outcome.expires_at is not None
        and outcome.expires_at <= outcome.finished_at
    )


def _orphan_columns(orphans: Sequence[Row], now: datetime) -> dict[str, Any]:
    return {
        "ids": [o["id"] for o in orphans],
        "claimed_by": [o["claimed_by"] for o in orphans],
        "attempts": [o["attempts"] for o in orphans],
        "statuses": ["READY" if o["attempts"] < o["max_attempts"] else "FAILED" for o in orphans],
        # A malformed errors column must not stop recovery: it restarts as an empty list.
        "errors": [
            codec.dumps(
                decode_stored({"errors": o["errors"]})[0]["errors"]
                + [worker_lost_error(o["claimed_by"])]
            )
            for o in orphans
        ],
        "now": now,
    }
