"""Recurring tasks: ``VTASKS_SCHEDULE`` in settings, and the lone scheduler process.

VTASKS_SCHEDULE = {
    "nightly-report": {"task": "app.tasks.report", "schedule": crontab(hour=5, minute=0),
                       "args": [], "kwargs": {}, "queue_name": "reports", "priority": 0},
    "heartbeat": {"task": "app.tasks.ping", "schedule": 60},          # every 60 s
    "cleanup": {"task": "app.tasks.clean", "schedule": "*/15 * * * *", "time_zone": "UTC"},
}

A scheduler runs, by name: ``VTASKS_SCHEDULE``, the topology's ``scheduler.schedules`` over it
(the YAML wins), and the dynamic schedules stored in the backend (``vtasks.schedules.add``),
which a static schedule of the same name shadows. The dynamic ones are re-read every few seconds.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Mapping
from typing import Any

from vtasks.core.cron import Schedule, crontab
from vtasks.core.errors import ConfigError

__all__ = ["Schedule", "crontab", "run_scheduler", "schedules_from_settings", "static_schedules"]

logger = logging.getLogger("vtasks.scheduler")

#: The keys of one schedule entry (``VTASKS_SCHEDULE``, YAML ``scheduler.schedules``, dynamic).
ENTRY_KEYS = frozenset(
    {"task", "schedule", "args", "kwargs", "queue_name", "priority", "time_zone", "catch_up"}
)


def schedules_from_settings(settings: Any = None) -> list[Schedule]:
    """``settings.VTASKS_SCHEDULE`` as validated ``Schedule``s (time zone: ``TIME_ZONE``)."""
    return static_schedules(settings=settings)


def static_schedules(
    yaml_entries: Mapping[str, Mapping[str, Any]] | None = None, settings: Any = None
) -> list[Schedule]:
    """``VTASKS_SCHEDULE`` with the topology's ``scheduler.schedules`` over it, by name."""
    settings = _settings(settings)
    raw: Mapping[str, Mapping[str, Any]] = getattr(settings, "VTASKS_SCHEDULE", {}) or {}
    zone = default_zone(settings)
    found = {
        name: _schedule(name, entry, zone, f"VTASKS_SCHEDULE[{name!r}]")
        for name, entry in raw.items()
    }
    for name, entry in (yaml_entries or {}).items():
        found[name] = _schedule(name, entry, zone, f"scheduler.schedules.{name}")
    return list(found.values())


def default_zone(settings: Any = None) -> str:
    return getattr(_settings(settings), "TIME_ZONE", None) or "UTC"


def entry_schedule(name: str, entry: Mapping[str, Any], settings: Any = None) -> Schedule:
    """A dynamic schedule's stored entry as a ``Schedule`` (time zone: ``TIME_ZONE``)."""
    return _schedule(name, entry, default_zone(settings), f"dynamic schedule {name!r}")


def _settings(settings: Any) -> Any:
    if settings is None:
        from django.conf import settings as django_settings

        return django_settings
    return settings


def _schedule(name: str, entry: Mapping[str, Any], zone: str, where: str) -> Schedule:
    unknown = set(entry) - ENTRY_KEYS
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
        args=tuple(entry.get("args") or ()),
        kwargs=dict(entry.get("kwargs") or {}),
        queue_name=entry.get("queue_name"),
        priority=entry.get("priority"),
        time_zone=entry.get("time_zone") or zone,
        catch_up=entry.get("catch_up") or "once",
    )


class ScheduleSet:
    """What a running scheduler fires: the static schedules, then the backend's dynamic ones.

    Called on every reload. A dynamic schedule that shadows a static name or no longer parses is
    left out, with one warning per key and problem (not one per reload).
    """

    def __init__(self, backend: Any, static: list[Schedule]) -> None:
        self.backend, self.static = backend, static
        self._warned: set[tuple[str, str]] = set()

    def __call__(self) -> list[Schedule]:
        stored = (
            self.backend.stored_schedules() if hasattr(self.backend, "stored_schedules") else {}
        )
        names = {schedule.name for schedule in self.static}
        dynamic = []
        for key, entry in stored.items():
            if key in names:
                self._warn(key, "a VTASKS_SCHEDULE or YAML schedule of that name wins")
                continue
            try:
                dynamic.append(entry_schedule(key, entry))
            except ConfigError as exc:
                self._warn(key, str(exc))
        return [*self.static, *dynamic]

    def _warn(self, key: str, problem: str) -> None:
        if (key, problem) not in self._warned:
            self._warned.add((key, problem))
            logger.warning("vtasks: dynamic schedule %s is skipped: %s", key, problem)


def run_scheduler(
    backend_alias: str = "default", yaml_schedules: Mapping[str, Mapping[str, Any]] | None = None
) -> int:
    """Run a scheduler on ``backend_alias`` until SIGTERM/SIGINT (see the module docstring)."""
    stop = {"requested": False}

    def request_stop(signum: int, frame: object) -> None:
        stop["requested"] = True  # only a flag: the loop notices within MAX_SLEEP

    loop = scheduler_loop(backend_alias, yaml_schedules, lambda: stop["requested"])
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)
    return loop.run()


def scheduler_loop(
    backend_alias: str,
    yaml_schedules: Mapping[str, Mapping[str, Any]] | None,
    stopping: Callable[[], bool],
) -> Any:
    """The ``SchedulerLoop`` of ``run_scheduler``, stopping when ``stopping()`` says so (the
    async mode runs it in a thread)."""
    from django.tasks import task_backends

    from vtasks.runtime.scheduler import SchedulerLoop

    backend = task_backends[backend_alias]
    if not hasattr(backend, "fire_slot"):
        raise ConfigError(
            f"backend {backend_alias!r} ({type(backend).__name__}) cannot run schedules yet"
        )
    static = static_schedules(yaml_schedules)
    return SchedulerLoop(
        static,
        fire=_fresh(backend.fire_slot),
        last_slot=_fresh(backend.last_slot),
        stopping=stopping,
        housekeeping=_fresh(_housekeeping(backend)),
        reload=_fresh(ScheduleSet(backend, static)),
    )


def _housekeeping(backend: Any) -> Callable[[], None]:
    """Expired results go (``purge``), and fired-slot rows no scheduler needs (``prune_slots``)."""
    jobs = [getattr(backend, name) for name in ("purge", "prune_slots") if hasattr(backend, name)]

    def keep_house() -> None:
        for job in jobs:
            job()

    return keep_house


def _fresh[T](call: Callable[..., T]) -> Callable[..., T]:
    """``call`` after Django drops its broken or expired connections, as a request would.

    Outside a request nothing else does: after a database restart every call would fail on the
    dead connection forever, instead of one tick failing.
    """
    from django.db import close_old_connections

    def fresh(*args: Any) -> T:
        close_old_connections()
        return call(*args)

    return fresh
