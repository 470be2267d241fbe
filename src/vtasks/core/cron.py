"""Schedules and their slots: when a recurring task is due. Pure: no I/O, no Django.

A slot is a point in time a schedule fires at. Every scheduler computes the same slots for the
same schedule (cron through croniter; intervals aligned to the Unix epoch), so the backend can
admit each (schedule, slot) pair exactly once however many schedulers run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from croniter import croniter

from vtasks.core.errors import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """``cron`` (5 fields, or 6 with seconds last) or ``every`` seconds, evaluated in ``time_zone``."""

    name: str
    task: str
    cron: str | None = None
    every: float | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue_name: str | None = None
    priority: int | None = None
    time_zone: str = "UTC"
    #: After downtime: fire the latest missed slot once ("once"), or only future slots ("skip").
    catch_up: Literal["once", "skip"] = "once"

    def __post_init__(self) -> None:
        if (self.cron is None) == (self.every is None):
            raise ConfigError(f"schedule {self.name!r}: give exactly one of cron or every")
        if self.every is not None and not self.every > 0:
            raise ConfigError(
                f"schedule {self.name!r}: every must be > 0 seconds, got {self.every!r}"
            )
        if self.cron is not None and not croniter.is_valid(self.cron):
            raise ConfigError(f"schedule {self.name!r}: invalid cron expression {self.cron!r}")
        try:
            ZoneInfo(self.time_zone)
        except Exception:
            raise ConfigError(
                f"schedule {self.name!r}: unknown time zone {self.time_zone!r}"
            ) from None

    def next_slot(self, after: datetime) -> datetime:
        """The first slot strictly after ``after`` (aware), in UTC."""
        if self.every is not None:
            stamp = after.timestamp()
            index = math.floor(stamp / self.every) + 1
            return datetime.fromtimestamp(index * self.every, UTC)
        assert self.cron is not None
        local = after.astimezone(ZoneInfo(self.time_zone))
        following = croniter(self.cron, local).get_next(datetime)
        return following.astimezone(UTC)

    def latest_slot(self, at: datetime) -> datetime:
        """The last slot at or before ``at``, in UTC."""
        if self.every is not None:
            index = math.floor(at.timestamp() / self.every)
            return datetime.fromtimestamp(index * self.every, UTC)
        assert self.cron is not None
        local = (at + timedelta(microseconds=1)).astimezone(ZoneInfo(self.time_zone))
        return croniter(self.cron, local).get_prev(datetime).astimezone(UTC)


def crontab(
    minute: str | int = "*", hour: str | int = "*", day_of_week: str | int = "*",
    day_of_month: str | int = "*", month_of_year: str | int = "*",
) -> str:  # fmt: skip
    """A cron expression from Celery-style fields: ``crontab(hour=5, minute=0)`` → ``"0 5 * * *"``."""
    return f"{minute} {hour} {day_of_month} {month_of_year} {day_of_week}"


def slot_key(slot: datetime) -> str:
    """A slot's stable text form (UTC, microseconds), the same in every process."""
    return slot.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
