"""The database backend's schedule storage: fired slots (``vtasks_schedule_slot``, the guard that
lets a slot fire once) and dynamic schedules (``vtasks_stored_schedule``, ``vtasks.schedules``);
``DatabaseBackend`` delegates here."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

from vtasks.core.cron import Schedule
from vtasks.wire import codec


def last_slot(db: str, schedule: Schedule | str) -> datetime | None:
    """The latest slot of ``schedule`` (or a schedule name) that fired, or ``None``."""
    from vtasks.models import ScheduleSlot

    name = schedule if isinstance(schedule, str) else schedule.name
    rows = ScheduleSlot.objects.using(db).filter(schedule=name)
    latest = rows.order_by("-slot").values_list("slot", flat=True).first()
    return (
        datetime.strptime(latest, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC) if latest else None
    )


def prune_slots(db: str, *, keep: timedelta = timedelta(days=1), batch_size: int = 1000) -> int:
    """Delete fired-slot rows older than ``keep``, except each schedule's latest (its catch-up
    mark); returns how many went.

    A scheduler only ever fires a schedule's latest slot, never one older than the latest
    fired, so those rows guard nothing any more; ``keep`` is a margin for skewed clocks.
    """
    from django.db.models import OuterRef, Subquery

    from vtasks.models import ScheduleSlot

    slots = ScheduleSlot.objects.using(db)
    newest = slots.filter(schedule=OuterRef("schedule")).order_by("-slot").values("slot")[:1]
    old = slots.filter(fired_at__lt=timezone.now() - keep).exclude(slot=Subquery(newest))
    deleted = 0
    # Ids first, then delete by id: MySQL refuses a DELETE whose subquery reads its own table.
    while batch := list(old.values_list("id", flat=True)[:batch_size]):
        deleted += slots.filter(id__in=batch).delete()[0]
    return deleted


def store(db: str, key: str, entry: Mapping[str, Any]) -> None:
    """Add or replace the dynamic schedule ``key`` (a ``VTASKS_SCHEDULE``-style entry)."""
    from vtasks.models import StoredSchedule

    when = entry["schedule"]
    StoredSchedule.objects.using(db).update_or_create(
        key=key,
        defaults={
            "task_path": entry["task"], "cron": when if isinstance(when, str) else None,
            "every": None if isinstance(when, str) else float(when),
            "args": codec.dumps(list(entry.get("args", ()))),
            "kwargs": codec.dumps(dict(entry.get("kwargs", {}))),
            "queue_name": entry.get("queue_name"), "priority": entry.get("priority"),
            "time_zone": entry.get("time_zone"), "catch_up": entry.get("catch_up", "once"),
            "updated_at": timezone.now(),
        },
    )  # fmt: skip


def delete(db: str, key: str) -> bool:
    """Remove the dynamic schedule ``key``; whether it existed."""
    from vtasks.models import StoredSchedule

    return bool(StoredSchedule.objects.using(db).filter(key=key).delete()[0])


def stored(db: str) -> dict[str, dict[str, Any]]:
    """Every dynamic schedule, by key, as ``VTASKS_SCHEDULE``-style entries."""
    from vtasks.models import StoredSchedule

    rows = StoredSchedule.objects.using(db).order_by("key").values()
    return {row["key"]: _schedule_entry(row) for row in rows}


def _schedule_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "task": row["task_path"], "schedule": row["cron"] if row["cron"] else row["every"],
        "args": codec.loads(row["args"]), "kwargs": codec.loads(row["kwargs"]),
        "catch_up": row["catch_up"],
    }  # fmt: skip
    for name in ("queue_name", "priority", "time_zone"):
        if row[name] is not None:
            entry[name] = row[name]
    return entry
