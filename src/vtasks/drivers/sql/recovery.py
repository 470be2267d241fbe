"""Recovering dead processes' claims in the database: ``SqlDriver.recover_dead`` runs this on its
thread.

One transaction drops the processes whose heartbeat is older than the threshold, frees the
concurrency slots of every holder not in the process table, and releases each RUNNING task
whose claimer is not there (pruned now, or its row gone another way) as a failed attempt: back
to READY while attempts remain, else FAILED with its unique lock freed. Each update is fenced on
the claimer and the attempt count, so a late finish by a process presumed dead, or a concurrent
recoverer, loses cleanly; ``SKIP LOCKED`` keeps two recoverers off the same rows.
"""

from __future__ import annotations

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from vtasks.drivers.base import Recovered
from vtasks.drivers.records import decode_stored, worker_lost_error
from vtasks.drivers.sql.slots import slot_rows
from vtasks.wire import codec


def recover_dead(db_alias: str, alive_threshold: float) -> Recovered:
    from vtasks.models import ProcessRecord, TaskRecord, UniqueLock

    processes = ProcessRecord.objects.using(db_alias)
    tasks = TaskRecord.objects.using(db_alias)
    now = timezone.now()
    requeued: list[str] = []
    failed: list[str] = []
    with transaction.atomic(using=db_alias):
        stale = processes.filter(heartbeat_at__lt=now - timedelta(seconds=alive_threshold))
        dead = list(stale.values_list("id", flat=True))
        stale.delete()
        live = processes.values_list("id", flat=True)
        slot_rows(db_alias).exclude(claimed_by__in=live).delete()
        # Claims of pruned processes, and of processes whose row vanished another way.
        orphans = (
            tasks.select_for_update(skip_locked=True)
            .filter(status="RUNNING")
            .exclude(claimed_by__in=live)
            .values("id", "claimed_by", "attempts", "max_attempts", "errors", "unique_key")
        )
        for row in list(orphans):
            # decode_stored: a malformed errors column must not stop every recovery.
            errors = decode_stored(row)[0]["errors"] + [worker_lost_error(row["claimed_by"])]
            fenced = tasks.filter(
                id=row["id"], status="RUNNING", attempts=row["attempts"],
                claimed_by=row["claimed_by"],
            )  # fmt: skip
            if row["attempts"] < row["max_attempts"]:
                fenced.update(
                    status="READY", claimed_by=None, available_at=now, errors=codec.dumps(errors)
                )
                requeued.append(row["id"])
            else:
                fenced.update(
                    status="FAILED", claimed_by=None, finished_at=now, errors=codec.dumps(errors)
                )
                failed.append(row["id"])
                if row["unique_key"]:
                    UniqueLock.objects.using(db_alias).filter(
                        key=row["unique_key"], task_id=row["id"]
                    ).delete()
    return Recovered(processes=dead, requeued=requeued, failed=failed)
