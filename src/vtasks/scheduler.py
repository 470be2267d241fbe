"""Recurring tasks: ``VTASKS_SCHEDULE`` in settings, and the lone scheduler process.

VTASKS_SCHEDULE = {
    "nightly-report": {"task": "app.tasks.report", "schedule": crontab(hour=5, minute=0),
                       "args": [], "kwargs": {}, "queue_name": "reports", "priority": 0},
    "heartbeat": {"task": "app.tasks.ping", "schedule": 60},          # every 60 s
    "cleanup": {"task": "app.tasks.clean", "schedule": "*/15 * * * *", "time_zone": "UTC"},
}
"""

from __future__ import annotations

import signal
from collections.abc import Mapping
from typing import Any

from vtasks.core.cron import Schedule, crontab
from vtasks.core.errors import ConfigError

__all__ = ["Schedule", "crontab", "run_scheduler", "schedules_from_settings"]


def schedules_from_settings(settings: Any = None) -> list[Schedule]:
    """``settings.VTASKS_SCHEDULE`` as validated ``Schedule``s (time zone: ``TIME_ZONE``)."""
    if settings is None:
        from django.conf import settings as django_settings

        settings = django_settings
    raw: Mapping[str, Mapping[str, Any]] = getattr(settings, "VTASKS_SCHEDULE", {}) or {}
    default_zone = getattr(settings, "TIME_ZONE", None) or "UTC"
    return [_schedule(name, entry, default_zone) for name, entry in raw.items()]


def _schedule(name: str, entry: Mapping[str, Any], default_zone: str) -> Schedule:
    where = f"VTASKS_SCHEDULE[{name!r}]"
    unknown = set(entry) - {
        "task",
        "schedule",
        "args",
        "kwargs",
        "queue_name",
        "priority",
        "time_zone",
        "catch_up",
    }
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}")
    if "task" not in entry or "schedule" not in entry:
        raise ConfigError(f"{where}: needs 'task' (a dotted path) and 'schedule'")
    when = entry["schedule"]
    if isinstance(when, bool) or not isinstance(when, (int, float, str)):
        raise ConfigError(f"{where}.schedule: a cron string or seconds, got {when!r}")
    return Schedule(
        name=name,
        task=entry["task"],
        cron=when if isinstance(when, str) else None,
        every=float(when) if not isinstance(when, str) else None,
        args=tuple(entry.get("args", ())),
        kwargs=dict(entry.get("kwargs", {})),
        queue_name=entry.get("queue_name"),
        priority=entry.get("priority"),
        time_zone=entry.get("time_zone", default_zone),
        catch_up=entry.get("catch_up", "once"),
    )


def run_scheduler(backend_alias: str = "default") -> int:
    """Run a scheduler for ``VTASKS_SCHEDULE`` on ``backend_alias`` until SIGTERM/SIGINT."""
    from django.tasks import task_backends

    from vtasks.runtime.scheduler import SchedulerLoop

    backend = task_backends[backend_alias]
    if not hasattr(backend, "fire_slot"):
        raise ConfigError(
            f"backend {backend_alias!r} ({type(backend).__name__}) cannot run schedules yet"
        )
    stop = {"requested": False}

    def request_stop(signum: int, frame: object) -> None:
        stop["requested"] = True  # only a flag: the loop notices within MAX_SLEEP

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)
    loop = SchedulerLoop(
        schedules_from_settings(),
        fire=backend.fire_slot,
        last_slot=backend.last_slot,
        stopping=lambda: stop["requested"],
        housekeeping=getattr(backend, "purge", None),
    )
    return loop.run()
