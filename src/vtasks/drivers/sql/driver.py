"""``SqlDriver``: the portable driver on Django's ORM.

All ORM work runs in one dedicated thread, so the worker holds a single connection and the event
loop never blocks on the database. SQLite has one writer: use WAL and ``transaction_mode:
IMMEDIATE`` (the README shows the settings) so claims from several processes queue instead of
failing. MySQL/MariaDB (10.6+) claim with ``SELECT ... FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, TypeVar

from django.db import close_old_connections, connections, transaction
from django.utils import timezone

from vtasks.drivers.base import Claim, ClaimRef, Outcome, ProcessInfo, Recovered
from vtasks.drivers.paused import PausedQueues
from vtasks.drivers.records import claim_from_row, defer_changes, outcome_changes
from vtasks.drivers.sql import slots
from vtasks.drivers.sql.queries import QUERIES
from vtasks.drivers.sql.recovery import recover_dead
from vtasks.wire import codec

T = TypeVar("T")
#: Queue names ``known_queues`` walks at most on MySQL/MariaDB (one round trip each).
MAX_QUEUES = 10_000
_CLAIM_FIELDS = (
    "seq", "id", "task_path", "queue_name", "priority", "args", "kwargs", "backend", "run_after",
    "enqueued_at", "started_at", "attempts", "max_attempts", "worker_ids", "errors", "unique_key", "options",
)  # fmt: skip


#: Seconds without a call after which the connection is checked before the next one.
IDLE_CHECK_AFTER = 30.0


class SqlDriver:
    def __init__(self, db_alias: str = "default", *, poll_interval: float = 0.5) -> None:
        self.db_alias = db_alias
        self.poll_interval = poll_interval
        self._executor: ThreadPoolExecutor | None = None
        self._paused = PausedQueues()
        #: Monotonic time of the last call (on the driver's thread): see ``_guarded``.
        self._used_at = 0.0

    # -- plumbing ------------------------------------------------------------------------------
    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="vtasks-sql")

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        # Submitted ahead of the shutdown and shielded from the caller's timeout: a thread stuck
        # in a call (SQLite's write lock) still closes its connection after it, then exits. Awaited
        # through ``_run``, a timeout cancelled the close and left the connection and the thread
        # behind; the supervisor reopens its driver after every failed beat, so on a busy SQLite
        # it leaked a connection (two fds, ~150 kB) per failure (the soak, issue #8).
        closed = executor.submit(self._close_connection)
        executor.shutdown(wait=False)
        await asyncio.shield(asyncio.wrap_future(closed))
        executor.shutdown(wait=True)  # joined: no thread of ours is running across a fork

    def _close_connection(self) -> None:
        connections[self.db_alias].close()

    async def _run(self, fn: Callable[[], T]) -> T:
        assert self._executor is not None, "SqlDriver.open() was not awaited"
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._guarded, fn)

    def _guarded(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on this driver's thread, on the connection it keeps.

        A server's connection is held across calls whatever ``CONN_MAX_AGE`` says (as Django's own
        ``db_worker`` holds it): that setting ends connections at request boundaries, and a worker
        making several calls a second would otherwise connect for each (measured: 57 ms a call on
        MariaDB with PyMySQL 2, which builds a TLS context per connection). After an idle spell it
        is checked before use; after an error it is closed if unusable, so the next call
        reconnects.
        """
        connection = connections[self.db_alias]
        if connection.vendor == "sqlite":
            # A file, cheap to reopen; kept open here, its reads went stale in the supervisor's
            # tree (seen as tasks that stopped running in two SQLite e2e tests): per CONN_MAX_AGE.
            close_old_connections()
        else:
            now = time.monotonic()
            if (
                connection.connection is not None and now - self._used_at > IDLE_CHECK_AFTER
                and not connection.is_usable()
            ):  # fmt: skip
                connection.close()
            self._used_at = now
        try:
            return fn()
        except Exception:
            # A broken connection must not poison every later call.
            if connection.connection is not None and not connection.is_usable():
                connection.close()
            raise

    def _tasks(self) -> Any:
        from vtasks.models import TaskRecord

        return TaskRecord.objects.using(self.db_alias)

    def _processes(self) -> Any:
        from vtasks.models import ProcessRecord

        return ProcessRecord.objects.using(self.db_alias)

    # -- claim and finish ----------------------------------------------------------------------
    async def claim(self, queues: Sequence[str], limit: int, process_id: str) -> list[Claim]:
        return await self._run(lambda: self._claim(queues, limit, process_id))

    def _claim(self, queues: Sequence[str], limit: int, process_id: str) -> list[Claim]:
        claims: list[Claim] = []
        queues = self._unpaused(queues)
        with transaction.atomic(using=self.db_alias):
            now = timezone.now()
            for queue in queues:
                if len(claims) >= limit:
                    break
                rows = self._due(queue, limit - len(claims), now)
                claims += self._take(rows, process_id, now)
        return claims

    def _due(self, queue: str, limit: int, now: datetime) -> list[dict[str, Any]]:
        """Up to ``limit`` due READY rows of ``queue``, locked (SKIP LOCKED), in claim order."""
        return list(
            self._tasks()
            .select_for_update(skip_locked=True)
            .filter(queue_name=queue, status="READY", available_at__lte=now)
            .order_by("-priority", "seq")
            .values(*_CLAIM_FIELDS)[:limit]
        )

    def _take(self, rows: list[dict[str, Any]], process_id: str, now: datetime) -> list[Claim]:
        claims = []
        for row in rows:
            claim, changes = claim_from_row(row, process_id, now)
            if self._tasks().filter(seq=row["seq"], status="READY").update(**changes):
                claims.append(claim)
        return claims

    async def claim_by_priority(
        self, queues: Sequence[str], limit: int, process_id: str
    ) -> list[Claim]:
        return await self._run(lambda: self._claim_by_priority(queues, limit, process_id))

    def _claim_by_priority(self, queues: Sequence[str], limit: int, process_id: str) -> list[Claim]:
        """Each queue's best ``limit`` rows (one index range each), merged: ``seq`` is global,
        so FIFO holds across the queues too. Rows locked but not taken unlock at commit."""
        queues = self._unpaused(queues)
        with transaction.atomic(using=self.db_alias):
            now = timezone.now()
            rows = [row for queue in queues for row in self._due(queue, limit, now)]
            rows.sort(key=lambda row: (-row["priority"], row["seq"]))
            return self._take(rows[:limit], process_id, now)

    async def known_queues(self) -> list[str]:
        return await self._run(self._known_queues)

    def _known_queues(self) -> list[str]:
        """An index skip scan, as each database's planner takes it (see ``queries.sql``)."""
        connection = connections[self.db_alias]
        with connection.cursor() as cursor:
            if connection.vendor != "mysql":
                sqlite = connection.vendor == "sqlite"
                cursor.execute(QUERIES["known_queues_sqlite" if sqlite else "known_queues"])
                return [row[0] for row in cursor.fetchall()]
            names, last = [], ""
            for _ in range(MAX_QUEUES):
                cursor.execute(QUERIES["next_queue_mysql"], [last])
                row = cursor.fetchone()
                if row is None or row[0] is None:
                    break
                last = row[0]
                if row[1]:
                    names.append(last)
            return names

    async def finish(self, outcomes: Sequence[Outcome], process_id: str) -> list[str]:
        return await self._run(lambda: self._finish(outcomes, process_id))

    def _finish(self, outcomes: Sequence[Outcome], process_id: str) -> list[str]:
        from vtasks.models import UniqueLock

        refused: list[str] = []
        with transaction.atomic(using=self.db_alias):
            for outcome in outcomes:
                claim = outcome.claim
                fenced = self._tasks().filter(
                    id=claim.id, status="RUNNING", claimed_by=process_id, attempts=claim.attempt
                )
                if not fenced.update(**outcome_changes(outcome)):
                    refused.append(claim.id)
                    continue
                if outcome.status != "READY" and claim.unique_key:
                    UniqueLock.objects.using(self.db_alias).filter(
                        key=claim.unique_key, task_id=claim.id
                    ).delete()
                # Only a finished record expires: a READY one is waiting for its next attempt.
                expires_at = outcome.expires_at if outcome.status != "READY" else None
                if expires_at is not None and expires_at <= outcome.finished_at:
                    self._tasks().filter(id=claim.id).delete()
        return refused

    async def held_by(self, process_id: str, queues: Sequence[str]) -> list[ClaimRef]:
        def held() -> list[ClaimRef]:
            rows = self._tasks().filter(
                status="RUNNING", claimed_by=process_id, queue_name__in=list(queues)
            )
            return [ClaimRef(*row) for row in rows.values_list("id", "queue_name", "attempts")]

        return await self._run(held)

    async def hand_back(self, claims: Sequence[Claim | ClaimRef], process_id: str) -> None:
        def hand_back() -> None:
            with transaction.atomic(using=self.db_alias):
                for claim in claims:
                    self._tasks().filter(
                        id=claim.id, status="RUNNING", claimed_by=process_id, attempts=claim.attempt
                    ).update(status="READY", claimed_by=None)

        await self._run(hand_back)

    async def defer(self, claims: Sequence[Claim], process_id: str, until: datetime) -> None:
        def defer() -> None:
            with transaction.atomic(using=self.db_alias):
                # Claims with the same changes (first attempts, mostly) share one UPDATE.
                groups: dict[tuple[int, str], list[Claim]] = defaultdict(list)
                for claim in claims:
                    groups[claim.attempt, codec.dumps(claim.worker_ids[:-1])].append(claim)
                for (attempt, _), group in groups.items():
                    self._tasks().filter(
                        id__in=[c.id for c in group], status="RUNNING", claimed_by=process_id,
                        attempts=attempt,
                    ).update(**defer_changes(group[0], until))  # fmt: skip

        if claims:
            await self._run(defer)

    async def expedite(self, tasks: Sequence[tuple[str, str]], at: datetime) -> None:
        if tasks:
            ids = [task_id for task_id, _ in tasks]
            await self._run(
                lambda: (
                    self._tasks()
                    .filter(id__in=ids, status="READY", available_at__gt=at)
                    .update(available_at=at)
                )
            )

    # -- concurrency slots (slots.py) ----------------------------------------------------------
    async def acquire_slots(
        self, requests: Sequence[tuple[str, str, int]], process_id: str
    ) -> list[bool]:
        if not requests:
            return []
        return await self._run(lambda: slots.acquire_all(self.db_alias, requests, process_id))

    async def release_slots(self, held: Sequence[tuple[str, str]], process_id: str) -> None:
        if held:
            ids = [task_id for task_id, _ in held]
            await self._run(lambda: slots.release(self.db_alias, ids, process_id))

    async def next_due(self, queues: Sequence[str]) -> datetime | None:
        def next_due() -> datetime | None:
            serving = self._unpaused(queues)
            if not serving:
                return None
            rows = self._tasks().filter(queue_name__in=list(serving), status="READY")
            return rows.order_by("available_at").values_list("available_at", flat=True).first()

        return await self._run(next_due)

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> None:
        await asyncio.sleep(min(timeout, self.poll_interval))

    def _unpaused(self, queues: Sequence[str]) -> Sequence[str]:
        """``queues`` but the paused ones (``vtasks.drivers.paused``); in the driver's thread."""
        if self._paused.stale():
            from vtasks.models import PausedQueue

            try:
                rows = PausedQueue.objects.using(self.db_alias).values_list("queue_name", flat=True)
                self._paused.update(list(rows))
            except Exception as exc:
                self._paused.failed(exc)
        return self._paused.serve(queues)

    # -- processes -----------------------------------------------------------------------------
    async def register(self, info: ProcessInfo) -> None:
        def register() -> None:
            now = timezone.now()
            self._processes().update_or_create(
                id=info.id,
                defaults=dict(
                    kind=info.kind,
                    hostname=info.hostname,
                    pid=info.pid,
                    queues=json.dumps(list(info.queues)),
                    started_at=now,
                    heartbeat_at=now,
                    meta=codec.dumps(info.meta),
                ),  # fmt: skip
            )

        await self._run(register)

    async def heartbeat(self, process_id: str) -> bool:
        return await self._run(
            lambda: bool(
                self._processes().filter(id=process_id).update(heartbeat_at=timezone.now())
            )
        )

    async def deregister(self, process_id: str) -> None:
        await self._run(lambda: self._processes().filter(id=process_id).delete())

    async def recover_dead(self, alive_threshold: float) -> Recovered:
        return await self._run(lambda: recover_dead(self.db_alias, alive_threshold))
