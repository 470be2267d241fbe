"""Concurrency slots in the database: a ``ConcurrencySlot`` row per slot held (key, slot number,
task, holder), its unique index on (key, slot) deciding races. ``SqlDriver`` runs these on its
thread; recovery frees the slots of processes that are gone (``recovery.py``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, transaction


def slot_rows(db_alias: str) -> Any:
    from vtasks.models import ConcurrencySlot

    return ConcurrencySlot.objects.using(db_alias)


def acquire_all(
    db_alias: str, requests: Sequence[tuple[str, str, int]], process_id: str
) -> list[bool]:
    """Per ``(task_id, key, limit)`` request, whether the task holds a slot of ``key`` now.

    One read of the keys' slots, then an insert (in a savepoint) per request that may fit: a
    lost race (MySQL, PostgreSQL) means not this time. Keys go in order, so two workers' inserts
    lock the unique index in the same order (no deadlock).
    """
    got = [False] * len(requests)
    by_key: dict[str, list[int]] = defaultdict(list)
    for index, (_, key, _) in enumerate(requests):
        by_key[key].append(index)
    with transaction.atomic(using=db_alias):
        rows = slot_rows(db_alias).filter(key__in=list(by_key))
        taken: dict[str, dict[int, tuple[str, str]]] = defaultdict(dict)
        for key, slot, task_id, claimed_by in rows.values_list(
            "key", "slot", "task_id", "claimed_by"
        ):
            taken[key][slot] = (task_id, claimed_by)
        for key in sorted(by_key):
            held = taken[key]
            for index in by_key[key]:
                task_id, _, limit = requests[index]
                if (task_id, process_id) in held.values():
                    got[index] = True
                    continue
                free = [n for n in range(limit) if n not in held]
                # len(held): slots numbered past a lowered limit still count against it.
                if not free or len(held) >= limit:
                    continue
                if _insert(db_alias, key, free[0], task_id, process_id):
                    got[index] = True
                held[free[0]] = (task_id, process_id)  # taken, by us or by the race winner
    return got


def _insert(db_alias: str, key: str, slot: int, task_id: str, process_id: str) -> bool:
    try:
        with transaction.atomic(using=db_alias):
            slot_rows(db_alias).create(key=key, slot=slot, task_id=task_id, claimed_by=process_id)
        return True
    except IntegrityError:
        return False


def release(db_alias: str, task_ids: Sequence[str], process_id: str) -> None:
    """Free the slots ``process_id`` holds for ``task_ids``."""
    slot_rows(db_alias).filter(task_id__in=list(task_ids), claimed_by=process_id).delete()
