"""What the admin's actions do to task rows: retry, run now, delete (with the unique locks).

Each change is one fenced UPDATE (it applies only while the row is still in the state the action
is for), so an action racing a worker's claim or finish changes nothing rather than the wrong thing.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from vtasks.admin.common import alive_cutoff
from vtasks.backends.db_queues import relock_unique


def retry(rows: QuerySet[Any]) -> int:
    """FAILED tasks and orphans back to READY, due now; errors and attempts are kept. A task that
    held a unique key takes it again, and stays as it is when another task holds it now."""
    from vtasks.models import ProcessRecord, TaskRecord

    db = rows.db
    now = timezone.now()
    alive = set(
        ProcessRecord.objects.using(db)
        .filter(heartbeat_at__gte=alive_cutoff(now))
        .values_list("id", flat=True)
    )
    retried = 0
    for row in rows.filter(status__in=("FAILED", "RUNNING")):
        if row.status == "RUNNING" and row.claimed_by in alive:
            continue  # running, not orphaned
        with transaction.atomic(using=db):
            if (
                row.status == "FAILED"
                and row.unique_key
                and not relock_unique(db, row.unique_key, row.id)
            ):
                continue
            fence = {"claimed_by": row.claimed_by} if row.status == "RUNNING" else {}
            retried += (
                TaskRecord.objects.using(db)
                .filter(seq=row.seq, status=row.status, **fence)
                .update(
                    status="READY",
                    available_at=now,
                    claimed_by=None,
                    finished_at=None,
                    expires_at=None,
                    return_value=None,
                )  # fmt: skip
            )
    return retried


def run_now(rows: QuerySet[Any]) -> int:
    """Waiting READY tasks due now (``run_after`` moves to now where it lay ahead)."""
    now = timezone.now()
    waiting = rows.filter(status="READY", available_at__gt=now)
    waiting.filter(run_after__gt=now).update(run_after=now)
    return waiting.update(available_at=now)


def delete(rows: QuerySet[Any]) -> int:
    """Delete the tasks and free the unique locks they hold."""
    from vtasks.models import UniqueLock

    db = rows.db
    with transaction.atomic(using=db):
        ids = list(rows.values_list("id", flat=True))
        UniqueLock.objects.using(db).filter(task_id__in=ids).delete()
        return rows.model.objects.using(db).filter(id__in=ids).delete()[0]
