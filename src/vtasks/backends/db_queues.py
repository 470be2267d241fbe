"""The database backend's queue controls that Valkey has too: pause/resume and retrying failed
tasks (``DatabaseBackend`` delegates here).

A pause is a row of ``vtasks_paused_queue``, per database: the SQL drivers skip the queue's tasks
(re-reading the table at most once a second) while it exists; enqueues still land. A retry is one
fenced UPDATE per task (FAILED -> READY, due now, errors and attempts kept), so it changes nothing
when a worker or an operator got there first; a task that held a unique key takes it again, and
stays FAILED while another task holds it.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone


def pause(db: str, queue: str) -> None:
    from vtasks.models import PausedQueue

    PausedQueue.objects.using(db).get_or_create(
        queue_name=queue, defaults={"paused_at": timezone.now()}
    )


def resume(db: str, queue: str) -> bool:
    from vtasks.models import PausedQueue

    return bool(PausedQueue.objects.using(db).filter(queue_name=queue).delete()[0])


def paused(db: str) -> set[str]:
    from vtasks.models import PausedQueue

    return set(PausedQueue.objects.using(db).values_list("queue_name", flat=True))


def retry_failed(
    db: str, backend: str, *, ids: list[str] | None = None, queue: str | None = None,
    task_path: str | None = None,
) -> int:  # fmt: skip
    """Put the FAILED tasks that match back to READY, oldest first; how many went back."""
    from vtasks.models import TaskRecord

    rows = TaskRecord.objects.using(db).filter(backend=backend, status="FAILED")
    if ids is not None:
        rows = rows.filter(id__in=ids)
    if queue is not None:
        rows = rows.filter(queue_name=queue)
    if task_path is not None:
        rows = rows.filter(task_path=task_path)
    retried = 0
    for seq, unique_key, task_id in rows.order_by("seq").values_list("seq", "unique_key", "id"):
        with transaction.atomic(using=db):
            if unique_key and not relock_unique(db, unique_key, task_id):
                continue
            retried += (
                TaskRecord.objects.using(db)
                .filter(seq=seq, status="FAILED")
                .update(
                    status="READY",
                    available_at=timezone.now(),
                    claimed_by=None,
                    finished_at=None,
                    expires_at=None,
                    return_value=None,
                )  # fmt: skip
            )
    return retried


def relock_unique(db: str, key: str, task_id: str) -> bool:
    """Take ``key`` for ``task_id`` again (an expired lock is freed first)."""
    from vtasks.models import UniqueLock

    locks: Any = UniqueLock.objects.using(db)
    locks.filter(key=key, expires_at__lte=timezone.now()).delete()
    if locks.filter(key=key).exclude(task_id=task_id).exists():
        return False
    try:
        with transaction.atomic(using=db):
            locks.get_or_create(key=key, defaults={"task_id": task_id})
    except IntegrityError:
        return False
    return True
