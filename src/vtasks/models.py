"""Tables of the SQL drivers. Every table name is spelled here once.

JSON values are stored as text produced by orjson: the same on SQLite, PostgreSQL and MySQL, and
never re-encoded by a database JSON type.
"""

from __future__ import annotations

from django.db import models

TASK_TABLE = "vtasks_task"
PROCESS_TABLE = "vtasks_process"
UNIQUE_LOCK_TABLE = "vtasks_unique_lock"
SCHEDULE_SLOT_TABLE = "vtasks_schedule_slot"
SCHEDULE_TABLE = "vtasks_schedule"
PAUSED_QUEUE_TABLE = "vtasks_paused_queue"
CONCURRENCY_SLOT_TABLE = "vtasks_concurrency_slot"

STATUS_CHOICES = [(s, s.title()) for s in ("READY", "RUNNING", "SUCCESSFUL", "FAILED")]


class TaskRecord(models.Model):
    """One task: its call, its state and its result.

    ``seq`` orders FIFO within a priority; ``id`` is the public result id. ``available_at`` is when
    the record may be claimed (``run_after``, or a retry's time); ``claimed_by`` plus ``attempts`` is
    the lease and its fencing token.
    """

    seq = models.BigAutoField(primary_key=True)
    # Unique through Meta.constraints, not unique=True: on PostgreSQL the latter adds a second,
    # varchar_pattern_ops index that no query uses and every insert pays for.
    id = models.CharField(max_length=32)
    backend = models.CharField(max_length=64)
    task_path = models.CharField(max_length=255)
    queue_name = models.CharField(max_length=64)
    priority = models.SmallIntegerField(default=0)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default="READY")
    args = models.TextField(default="[]")
    kwargs = models.TextField(default="{}")
    run_after = models.DateTimeField(null=True, blank=True)
    available_at = models.DateTimeField()
    enqueued_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    last_attempted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    attempts = models.IntegerField(default=0)
    max_attempts = models.IntegerField(default=1)
    worker_ids = models.TextField(default="[]")
    errors = models.TextField(default="[]")
    return_value = models.TextField(null=True, blank=True)
    claimed_by = models.CharField(max_length=100, null=True, blank=True)
    unique_key = models.CharField(max_length=255, null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    #: Per-call options the worker needs (``timeout``, ``result_ttl``), JSON.
    options = models.TextField(default="{}")

    class Meta:
        db_table = TASK_TABLE
        verbose_name = "task"
        # Partial indexes (PostgreSQL, SQLite): a claim or a finish changes indexed columns, so
        # every update is non-HOT and enters every index it qualifies for. Indexing only the rows
        # each query looks for (READY to claim, claimed to recover, expiring to purge) keeps that
        # work and the index bloat small. MySQL/MariaDB has no partial indexes: migration 0005
        # gives it plain ones (Django's W037 warning there is expected).
        indexes = [
            models.Index(
                fields=["queue_name", "-priority", "seq"],
                condition=models.Q(status="READY"),
                name="vtasks_task_ready",
            ),
            models.Index(
                fields=["claimed_by"],
                condition=models.Q(claimed_by__isnull=False),
                name="vtasks_task_claimed",
            ),
            models.Index(
                fields=["expires_at"],
                condition=models.Q(expires_at__isnull=False),
                name="vtasks_task_expiring",
            ),
        ]
        constraints = [models.UniqueConstraint(fields=["id"], name="vtasks_task_id_unique")]

    def __str__(self) -> str:
        return f"{self.task_path} [{self.id}] {self.status}"


class ProcessRecord(models.Model):
    """A live vtasks process (worker, scheduler, supervisor) and its last heartbeat."""

    id = models.CharField(max_length=100, primary_key=True)
    kind = models.CharField(max_length=20)
    hostname = models.CharField(max_length=255)
    pid = models.IntegerField()
    queues = models.TextField(default="[]")
    started_at = models.DateTimeField()
    heartbeat_at = models.DateTimeField(db_index=True)
    meta = models.TextField(default="{}")

    class Meta:
        db_table = PROCESS_TABLE
        verbose_name = "process"
        verbose_name_plural = "processes"

    def __str__(self) -> str:
        return f"{self.kind} {self.id}"


class UniqueLock(models.Model):
    """Held by the task that took ``key`` until it finishes (mutex) or ``expires_at`` (throttle)."""

    key = models.CharField(max_length=255, primary_key=True)
    task_id = models.CharField(max_length=32)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = UNIQUE_LOCK_TABLE
        verbose_name = "unique lock"

    def __str__(self) -> str:
        return self.key


class ScheduleSlot(models.Model):
    """One fired slot of a recurring schedule. The unique (schedule, slot) pair is what makes a
    slot fire once: the row is inserted in the same transaction as the task it enqueues."""

    schedule = models.CharField(max_length=200)
    slot = models.CharField(max_length=32)
    task_id = models.CharField(max_length=32)
    fired_at = models.DateTimeField()

    class Meta:
        db_table = SCHEDULE_SLOT_TABLE
        verbose_name = "schedule slot"
        constraints = [
            models.UniqueConstraint(fields=["schedule", "slot"], name="vtasks_schedule_slot_once")
        ]

    def __str__(self) -> str:
        return f"{self.schedule} @ {self.slot}"


class StoredSchedule(models.Model):
    """A dynamic schedule (``vtasks.schedules.add``): running schedulers re-read this table.

    ``cron`` or ``every`` is set, as in a ``VTASKS_SCHEDULE`` entry; ``args``/``kwargs`` are JSON.
    """

    key = models.CharField(max_length=200, primary_key=True)
    task_path = models.CharField(max_length=255)
    cron = models.CharField(max_length=200, null=True, blank=True)
    every = models.FloatField(null=True, blank=True)
    args = models.TextField(default="[]")
    kwargs = models.TextField(default="{}")
    queue_name = models.CharField(max_length=64, null=True, blank=True)
    priority = models.SmallIntegerField(null=True, blank=True)
    time_zone = models.CharField(max_length=64, null=True, blank=True)
    catch_up = models.CharField(max_length=4, default="once")
    updated_at = models.DateTimeField()

    class Meta:
        db_table = SCHEDULE_TABLE
        verbose_name = "schedule"

    def __str__(self) -> str:
        return self.key


class PausedQueue(models.Model):
    """A queue no worker claims from while its row exists (``DatabaseBackend.pause_queue``).

    Per database, like the claim: every backend alias on this database sees the pause. Workers
    re-read the table at most once a second (``vtasks.drivers.paused``), not per claim.
    """

    queue_name = models.CharField(max_length=64, primary_key=True)
    paused_at = models.DateTimeField()

    class Meta:
        db_table = PAUSED_QUEUE_TABLE
        verbose_name = "paused queue"

    def __str__(self) -> str:
        return self.queue_name


class ConcurrencySlot(models.Model):
    """One of a concurrency key's ``limit`` slots, held by a running task (``@task(concurrency_key=)``).

    The unique (key, slot) pair caps the holders: a worker inserts into a free slot number below
    the limit after its claim and deletes the row once the outcome is recorded; the reaper deletes
    the rows of dead processes (``claimed_by``).
    """

    key = models.CharField(max_length=255)
    slot = models.IntegerField()
    task_id = models.CharField(max_length=32, db_index=True)
    claimed_by = models.CharField(max_length=100, db_index=True)

    class Meta:
        db_table = CONCURRENCY_SLOT_TABLE
        verbose_name = "concurrency slot"
        constraints = [
            models.UniqueConstraint(fields=["key", "slot"], name="vtasks_concurrency_slot_once")
        ]

    def __str__(self) -> str:
        return f"{self.key} #{self.slot}: {self.task_id}"
