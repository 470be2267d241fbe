"""Dynamic schedules: add and remove recurring tasks at runtime, stored in the backend.

    from vtasks import schedules

    schedules.add("report:42", "app.tasks.report", "0 5 * * *", args=[42], queue_name="reports")
    schedules.add("ping", "app.tasks.ping", 60)            # every 60 seconds
    schedules.remove("report:42")
    schedules.list()                                       # [Schedule(...), ...]

Running schedulers re-read them every few seconds: no restart. A schedule is checked when added
(cron expression, time zone, task path, arguments, queue and priority), so a bad one fails here,
not later in the scheduler. Like any schedule, a new one fires only its future slots. A
``VTASKS_SCHEDULE`` or YAML schedule of the same name wins over a dynamic one.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from vtasks.core.cron import Schedule
from vtasks.core.errors import ConfigError

__all__ = ["add", "list", "remove"]

#: Matches the width of the schedule columns (``vtasks_schedule``, ``vtasks_schedule_slot``).
MAX_KEY_LENGTH = 200


def add(
    key: str,
    task_path: str,
    cron: str | float,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    queue_name: str | None = None,
    priority: int | None = None,
    *,
    time_zone: str | None = None,
    catch_up: Literal["once", "skip"] = "once",
    backend: str = "default",
) -> Schedule:
    """Add (or replace) the schedule ``key``: ``cron`` is a cron expression or seconds.

    Raises ``ConfigError`` naming the problem when the schedule could never fire.
    """
    from vtasks.scheduler import entry_schedule, schedules_from_settings

    where = f"vtasks.schedules.add({key!r})"
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_LENGTH:
        raise ConfigError(f"{where}: the key must be a non-empty string of at most 200 characters")
    if key in {schedule.name for schedule in schedules_from_settings()}:
        raise ConfigError(f"{where}: VTASKS_SCHEDULE has a schedule of that name; choose another")
    entry: dict[str, Any] = {
        "task": task_path, "schedule": cron, "args": builtins.list(args),
        "kwargs": dict(kwargs or {}), "catch_up": catch_up,
    }  # fmt: skip
    for name, value in (
        ("queue_name", queue_name),
        ("priority", priority),
        ("time_zone", time_zone),
    ):
        if value is not None:
            entry[name] = value
    if catch_up not in ("once", "skip"):
        raise ConfigError(f"{where}: catch_up must be 'once' or 'skip', got {catch_up!r}")
    store = _store(backend)
    try:
        schedule = entry_schedule(key, entry)
        # Everything an enqueue checks (task, queue, priority, JSON arguments), nothing written.
        new = store.prepare(store.scheduled_task(schedule), schedule.args, schedule.kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except Exception as exc:  # InvalidTask, ArgumentNotJSON, not a declared task
        raise ConfigError(f"{where}: {exc}") from exc
    entry["args"], entry["kwargs"] = new.args, new.kwargs  # as JSON gives them back
    store.store_schedule(key, entry)
    return schedule


def remove(key: str, *, backend: str = "default") -> bool:
    """Remove the schedule ``key``; whether it existed. Its slots already fired stay fired."""
    return bool(_store(backend).delete_schedule(key))


def list(*, backend: str = "default") -> builtins.list[Schedule]:  # shadows list() here only
    """Every dynamic schedule of ``backend``, by key."""
    from vtasks.scheduler import entry_schedule

    return [entry_schedule(key, entry) for key, entry in _store(backend).stored_schedules().items()]


def _store(alias: str) -> Any:
    from django.tasks import task_backends

    backend = task_backends[alias]
    if not hasattr(backend, "store_schedule"):
        raise ConfigError(
            f"backend {alias!r} ({type(backend).__name__}) cannot store schedules; "
            "use a vtasks database or Valkey backend"
        )
    return backend
