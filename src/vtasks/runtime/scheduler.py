"""The scheduler loop: fire each schedule's slots as they come due. Synchronous and small.

Exactly-once is the backend's job (``fire`` admits a (schedule, slot) pair once, atomically with
its enqueue); this loop only decides which slot is due. Several schedulers may run at once.
A new schedule never fires for the past; after downtime a schedule with ``catch_up="once"`` fires
its latest missed slot once, then goes on with future slots.

With ``reload``, the loop asks for the current schedules every ``reload_every`` seconds (dynamic
schedules live in the backend): a new or changed schedule is planned as at start, a removed one
is dropped, an unchanged one keeps its plan. A failed reload keeps the schedules it had.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from vtasks.core.cron import Schedule

logger = logging.getLogger("vtasks.scheduler")

#: The longest sleep between checks: bounds how late a stop request or a clock jump is noticed.
MAX_SLEEP = 0.5
#: Seconds between reads of the current schedules (``reload``): how soon a dynamic one is seen.
RELOAD_EVERY = 2.0


def utc_now() -> datetime:
    return datetime.now(UTC)


class SchedulerLoop:
    def __init__(
        self,
        schedules: Sequence[Schedule],
        *,
        fire: Callable[[Schedule, datetime], object],
        last_slot: Callable[[Schedule], datetime | None],
        stopping: Callable[[], bool],
        now: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        housekeeping: Callable[[], object] | None = None,
        housekeeping_every: float = 60.0,
        reload: Callable[[], Sequence[Schedule]] | None = None,
        reload_every: float = RELOAD_EVERY,
    ) -> None:
        self.schedules = list(schedules)
        self.fire, self.last_slot, self.stopping = fire, last_slot, stopping
        self.now, self.sleep = now, sleep
        self.housekeeping, self.housekeeping_every = housekeeping, housekeeping_every
        self.reload, self.reload_every = reload, reload_every
        self.fired = 0
        self._housekept: datetime | None = None
        self._reloaded: datetime | None = None
        self._due: dict[str, datetime] = {}

    def run(self) -> int:
        start = self.now()
        self._due = {schedule.name: self._first_due(schedule, start) for schedule in self.schedules}
        logger.info("vtasks: scheduler running %d schedule(s)", len(self.schedules))
        while not self.stopping():
            self._reload(self.now())
            for schedule in self.schedules:
                now = self.now()  # afresh for each: the calls before it may have taken a while
                due = self._due[schedule.name] <= now
                if due and self._fire(schedule, schedule.latest_slot(now)):
                    self._due[schedule.name] = schedule.next_slot(now)
            self._keep_house(self.now())
            wait = (
                min((d - self.now()).total_seconds() for d in self._due.values())
                if self._due
                else MAX_SLEEP
            )
            self.sleep(min(max(wait, 0.0), MAX_SLEEP))
        return 0

    def _reload(self, now: datetime) -> None:
        """Take up added, changed and removed schedules (see the module docstring)."""
        if self.reload is None or (
            self._reloaded is not None
            and (now - self._reloaded).total_seconds() < self.reload_every
        ):
            return
        self._reloaded = now
        try:
            current = list(self.reload())
        except Exception:
            logger.exception("vtasks: cannot read the schedules; keeping the current ones")
            return
        known = {schedule.name: schedule for schedule in self.schedules}
        planned = {}
        for schedule in current:
            if known.get(schedule.name) == schedule:
                planned[schedule.name] = self._due[schedule.name]
            else:
                logger.info("vtasks: schedule %s added or changed", schedule.name)
                planned[schedule.name] = self._first_due(schedule, now)
        for name in known.keys() - planned.keys():
            logger.info("vtasks: schedule %s removed", name)
        self.schedules, self._due = current, planned

    def _keep_house(self, now: datetime) -> None:
        """Delete expired results now and then (the backend deletes in batches)."""
        if self.housekeeping is None:
            return
        if (
            self._housekept is not None
            and (now - self._housekept).total_seconds() < self.housekeeping_every
        ):
            return
        self._housekept = now
        try:
            self.housekeeping()
        except Exception:
            logger.exception("vtasks: housekeeping failed; will retry")

    def _first_due(self, schedule: Schedule, now: datetime) -> datetime:
        latest = schedule.latest_slot(now)
        try:
            last = self.last_slot(schedule)
        except Exception:
            logger.exception(
                "vtasks: cannot read the last slot of %s; not catching up", schedule.name
            )
            last = None
        if last is not None and last < latest and schedule.catch_up == "once":
            return latest  # missed while down: fire the latest slot once, at once
        return schedule.next_slot(now)

    def _fire(self, schedule: Schedule, slot: datetime) -> bool:
        """Fire one slot; ``False`` when the backend failed (the slot is tried again)."""
        try:
            result = self.fire(schedule, slot)
        except Exception:
            logger.exception(
                "vtasks: schedule %s slot %s could not fire; retrying", schedule.name, slot
            )
            return False
        if result is not None:
            self.fired += 1
            logger.info("vtasks: schedule %s fired slot %s", schedule.name, slot.isoformat())
        return True
