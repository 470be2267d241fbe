"""The database backend: tasks are rows written on Django's own connection.

Because the insert runs on the connection Django uses for the application's models, a task enqueued
inside ``transaction.atomic()`` exists only if that transaction commits, and so does its unique lock.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, connections, transaction
from django.tasks import TaskResult
from django.tasks.exceptions import TaskResultDoesNotExist
from django.utils import timezone

from vtasks.backends import db_queues, db_schedules
from vtasks.backends.base import NewTask, VTasksBackend
from vtasks.core.cron import Schedule, slot_key
from vtasks.core.sqlfile import load

QUERIES = load("vtasks.backends", "queries.sql")


class DatabaseBackend(VTasksBackend):
    """``TASKS[alias]["BACKEND"] = "vtasks.backends.database.DatabaseBackend"``.

    OPTIONS: ``database_alias`` (default ``"default"``), ``MAX_ATTEMPTS``, ``BACKOFF``, ``RESULT_TTL``.

    ``database_alias`` may name a database of its own (a queue database): every query of the
    backend and of its workers goes there, so an enqueue is then not part of a transaction on the
    application's database (``vtasks.enqueue_on_commit``); ``vtasks.routers.VTasksRouter``
    keeps the tables there for ``migrate``. Queue controls: ``queue_depths``, ``clear_queue``,
    ``pause_queue``/``resume_queue``, ``retry_failed``/``retry_all_failed`` (``db_queues``).
    """

    @property
    def db_alias(self) -> str:
        return self.options.get("database_alias", "default")

    def store(self, new: NewTask) -> bool:
        if new.unique_key is None:
            self._insert(new)
            return True
        with transaction.atomic(using=self.db_alias):
            if not self._take_unique_lock(new):
                return False
            self._insert(new)
        return True

    def store_many(
        self, news: Sequence[NewTask], meanwhile: Callable[[], None] | None = None
    ) -> list[bool]:
        if meanwhile is not None:
            meanwhile()
        if any(new.unique_key for new in news):
            with transaction.atomic(using=self.db_alias):
                return [self.store(new) for new in news]
        for start in range(0, len(news), _BULK_BATCH):
            self._insert_many(news[start : start + _BULK_BATCH])
        return [True] * len(news)

    def _insert(self, new: NewTask) -> None:
        connection = connections[self.db_alias]
        if connection.vendor == "postgresql":
            _execute_prepared(
                connection,
                QUERIES["insert_task"],
                _columns(new, self.alias, _same),
                self.prepared_statements,
            )
            return
        adapt = connection.ops.adapt_datetimefield_value
        with connection.cursor() as cursor:
            cursor.execute(QUERIES["insert_task"], _columns(new, self.alias, adapt))

    def _insert_many(self, news: Sequence[NewTask]) -> None:
        connection = connections[self.db_alias]
        if connection.vendor == "postgresql":
            _copy_rows(
                connection, [_columns(new, self.alias, _same) + _NEW_ROW_CONSTANTS for new in news]
            )
            return
        adapt = connection.ops.adapt_datetimefield_value
        with transaction.atomic(using=self.db_alias), connection.cursor() as cursor:
            cursor.executemany(
                QUERIES["insert_task"], [_columns(new, self.alias, adapt) for new in news]
            )

    def _take_unique_lock(self, new: NewTask) -> bool:
        from vtasks.models import UniqueLock

        locks = UniqueLock.objects.using(self.db_alias)
        locks.filter(key=new.unique_key, expires_at__lte=timezone.now()).delete()
        try:
            with transaction.atomic(using=self.db_alias):
                locks.create(
                    key=new.unique_key,
                    task_id=new.id,
                    expires_at=new.unique_expires_at,
                )
        except IntegrityError:
            return False
        return True

    @property
    def prepared_statements(self) -> bool:
        """PostgreSQL: prepare vtasks' hot statements (enqueue, claim, finish) on the server.

        Planning them anew each time costs as much as running them. Set ``OPTIONS
        ["PREPARED_STATEMENTS"] = False`` behind a transaction-mode PgBouncer older than 1.21.
        """
        return bool(self.options.get("PREPARED_STATEMENTS", True))

    def create_driver(self) -> Any:
        """The worker's driver: psycopg's async pool on PostgreSQL when installed, else the ORM."""
        choice = self.options.get("DRIVER", "auto")
        if choice == "auto":
            choice = "postgres" if connections[self.db_alias].vendor == "postgresql" else "sql"
            if choice == "postgres" and not _psycopg_pool_installed():
                choice = "sql"
        if choice == "postgres":
            from vtasks.drivers.postgres import PostgresDriver

            return PostgresDriver.from_django(
                self.db_alias, prepare_threshold=0 if self.prepared_statements else None
            )
        from vtasks.drivers.sql import SqlDriver

        return SqlDriver(self.db_alias)

    def get_result(self, result_id: str) -> TaskResult:
        from vtasks.models import TaskRecord

        row = (
            TaskRecord.objects.using(self.db_alias)
            .filter(id=str(result_id)[:32], backend=self.alias)
            .values()
            .first()
        )
        if row is None or str(result_id) != row["id"]:
            raise TaskResultDoesNotExist(result_id)
        return self.build_result(row)

    # -- recurring schedules -------------------------------------------------------------------
    def fire_slot(self, schedule: Schedule, slot: datetime) -> TaskResult | None:
        """Enqueue ``schedule``'s task for ``slot`` unless some scheduler already did.

        The slot row and the task row commit together or not at all: never "enqueue, then record
        the run", so no crash between the two can fire a slot twice or lose it.
        """
        from vtasks.models import ScheduleSlot

        new = self.prepare(self.scheduled_task(schedule), schedule.args, schedule.kwargs)
        try:
            with transaction.atomic(using=self.db_alias):
                ScheduleSlot.objects.using(self.db_alias).create(
                    schedule=schedule.name,
                    slot=slot_key(slot),
                    task_id=new.id,
                    fired_at=new.enqueued_at,
                )
                if not self.store(new):
                    return None  # a unique task still queued: the slot is spent all the same
        except IntegrityError:
            return None
        return self._enqueued(new)

    def last_slot(self, schedule: Schedule | str) -> datetime | None:
        """The latest slot of ``schedule`` (or a schedule name) that fired, or ``None``."""
        return db_schedules.last_slot(self.db_alias, schedule)

    def prune_slots(self, *, keep: timedelta = timedelta(days=1), batch_size: int = 1000) -> int:
        """Delete fired-slot rows older than ``keep``, except each schedule's latest."""
        return db_schedules.prune_slots(self.db_alias, keep=keep, batch_size=batch_size)

    # -- dynamic schedules (vtasks.schedules) -------------------------------------------------
    def store_schedule(self, key: str, entry: Mapping[str, Any]) -> None:
        """Add or replace the dynamic schedule ``key`` (a ``VTASKS_SCHEDULE``-style entry)."""
        db_schedules.store(self.db_alias, key, entry)

    def delete_schedule(self, key: str) -> bool:
        """Remove the dynamic schedule ``key``; whether it existed."""
        return db_schedules.delete(self.db_alias, key)

    def stored_schedules(self) -> dict[str, dict[str, Any]]:
        """Every dynamic schedule, by key, as ``VTASKS_SCHEDULE``-style entries."""
        return db_schedules.stored(self.db_alias)

    def queue_depths(self, queues: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """Per queue: ready (due now), delayed, running and failed counts, oldest due task's age (s)."""
        from django.db.models import Count, Min, Q

        from vtasks.models import TaskRecord

        now = timezone.now()
        rows = TaskRecord.objects.using(self.db_alias).filter(backend=self.alias)
        if queues is not None:
            rows = rows.filter(queue_name__in=list(queues))
        due = Q(status="READY", available_at__lte=now)
        stats = rows.values("queue_name").annotate(
            ready=Count("seq", filter=due),
            delayed=Count("seq", filter=Q(status="READY", available_at__gt=now)),
            running=Count("seq", filter=Q(status="RUNNING")),
            failed=Count("seq", filter=Q(status="FAILED")),
            oldest=Min("available_at", filter=due),
        )
        paused = db_queues.paused(self.db_alias)
        depths = {
            row["queue_name"]: {
                "ready": row["ready"],
                "delayed": row["delayed"],
                "running": row["running"],
                "failed": row["failed"],
                "oldest_age": (now - row["oldest"]).total_seconds() if row["oldest"] else None,
                "paused": row["queue_name"] in paused,
            }  # fmt: skip
            for row in stats.order_by("queue_name")
        }
        for name in sorted(paused - set(depths)):  # a paused queue without tasks is still shown
            if queues is None or name in queues:
                depths[name] = {"ready": 0, "delayed": 0, "running": 0, "failed": 0,
                                "oldest_age": None, "paused": True}  # fmt: skip
        return depths

    # -- pause/resume and retry (vtasks.backends.db_queues) ------------------------------------
    def pause_queue(self, name: str) -> None:
        """Stop claims from ``name`` on this database (within a second; enqueues still land)."""
        db_queues.pause(self.db_alias, name)

    def resume_queue(self, name: str) -> bool:
        """Let workers claim from ``name`` again; whether it was paused."""
        return db_queues.resume(self.db_alias, name)

    def retry_failed(self, task_id: str) -> bool:
        """Put a FAILED task back to READY (errors and attempts kept); ``False`` when it is not
        FAILED, is gone, or another task holds its unique key now."""
        return db_queues.retry_failed(self.db_alias, self.alias, ids=[str(task_id)]) == 1

    def retry_all_failed(self, queue: str, task_path: str | None = None) -> int:
        """``retry_failed`` for every FAILED task of ``queue`` (of ``task_path`` only, if given)."""
        return db_queues.retry_failed(self.db_alias, self.alias, queue=queue, task_path=task_path)

    def clear_queue(self, name: str, *, failed: bool = False) -> int:
        """Delete the waiting (ready and delayed) tasks of ``name``, and with ``failed`` its FAILED
        ones too; never running ones. Their unique locks go with them. Returns how many went."""
        from vtasks.models import TaskRecord, UniqueLock

        statuses = ["READY", "FAILED"] if failed else ["READY"]
        rows = TaskRecord.objects.using(self.db_alias).filter(
            backend=self.alias, queue_name=name, status__in=statuses
        )
        deleted = 0
        while True:
            with transaction.atomic(using=self.db_alias):
                batch = list(rows.values_list("seq", "id")[:_BULK_BATCH])
                if not batch:
                    return deleted
                # Filtered again: a task a worker claimed meanwhile is RUNNING and stays, and
                # so does its lock.
                deleted += rows.filter(seq__in=[seq for seq, _ in batch]).delete()[0]
                ids = [task_id for _, task_id in batch]
                kept = TaskRecord.objects.using(self.db_alias).filter(id__in=ids)
                UniqueLock.objects.using(self.db_alias).filter(task_id__in=ids).exclude(
                    task_id__in=kept.values("id")
                ).delete()

    def processes(self) -> list[dict[str, Any]]:
        """The process table: every registered vtasks process and its last heartbeat."""
        from vtasks.models import ProcessRecord

        rows = ProcessRecord.objects.using(self.db_alias).order_by("kind", "id")
        return list(
            rows.values("id", "kind", "hostname", "pid", "queues", "started_at", "heartbeat_at")
        )

    def purge(self, *, batch_size: int = 1000, older_than: timedelta | None = None) -> int:
        """Delete finished records past their ``expires_at`` (or finished before ``older_than`` ago)."""
        from vtasks.models import TaskRecord

        return purge_expired(
            TaskRecord, self.db_alias, batch_size=batch_size, older_than=older_than
        )


def _psycopg_pool_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("psycopg_pool") is not None


_BULK_BATCH = 5000
#: status, attempts, worker_ids, errors of a new record (the tail of a ``copy_tasks`` row).
_NEW_ROW_CONSTANTS = ("READY", 0, "[]", "[]")


def _same(value: Any) -> Any:
    return value


def _columns(new: NewTask, backend: str, adapt: Callable[[Any], Any]) -> tuple[Any, ...]:
    """The parameters of ``insert_task``, in its column order; ``adapt`` prepares datetimes."""
    task, plan = new.task, new.plan
    return (
        new.id, backend, plan.task_path, task.queue_name, task.priority,
        new.args_json.decode(), new.kwargs_json.decode(), adapt(task.run_after),
        adapt(new.available_at), adapt(new.enqueued_at), plan.max_attempts,
        new.unique_key if plan.release_unique_on_finish else None,
        new.options_json or plan.options_json,
    )  # fmt: skip


def _execute_prepared(connection: Any, query: str, params: Sequence[Any], prepare: bool) -> None:
    """Run ``query`` as a prepared statement on Django's own psycopg connection.

    Django binds parameters client-side, so PostgreSQL parses and plans every INSERT again; a
    prepared statement skips that (about a third of an enqueue's server time). Same connection,
    so the insert still joins the caller's transaction; errors are wrapped as Django's own.
    """
    connection.validate_no_broken_transaction()
    with connection.wrap_database_errors:
        connection.ensure_connection()
        _server_cursor(connection).execute(query, params, prepare=prepare)


def _server_cursor(connection: Any) -> Any:
    """A server-binding psycopg cursor on the connection, kept while the connection lives."""
    import psycopg

    raw = connection.connection
    cached = getattr(connection, "_vtasks_cursor", None)
    if cached is None or cached.connection is not raw or cached.closed:
        if raw.prepare_threshold is None and not connection.settings_dict["OPTIONS"].get(
            "server_side_binding"
        ):
            # psycopg ignores prepare=True while the threshold is None, Django's default. Django's
            # own cursors bind client-side and never prepare, so this changes only vtasks' cursor.
            raw.prepare_threshold = 5
        cached = psycopg.Cursor(raw)
        connection._vtasks_cursor = cached
    return cached


def _copy_rows(connection: Any, rows: Sequence[tuple[Any, ...]]) -> None:
    """COPY ``rows`` into the task table on Django's own psycopg connection (see ``_execute_prepared``)."""
    import psycopg

    connection.validate_no_broken_transaction()
    with connection.wrap_database_errors:
        connection.ensure_connection()
        with (
            psycopg.Cursor(connection.connection) as cursor,
            cursor.copy(QUERIES["copy_tasks"]) as copy,
        ):
            for row in rows:
                copy.write_row(row)


def purge_expired(
    model: Any, db_alias: str, *, batch_size: int = 1000, older_than: timedelta | None = None
) -> int:
    """Delete expired finished records in batches; returns how many went."""
    now = timezone.now()
    rows = model.objects.using(db_alias).filter(status__in=("SUCCESSFUL", "FAILED"))
    rows = (
        rows.filter(finished_at__lte=now - older_than)
        if older_than
        else rows.filter(expires_at__lte=now)
    )
    deleted = 0
    while True:
        batch = list(rows.values_list("seq", flat=True)[:batch_size])
        if not batch:
            return deleted
        deleted += model.objects.using(db_alias).filter(seq__in=batch).delete()[0]
