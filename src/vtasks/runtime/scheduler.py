"""The scheduler loop: fire each schedule's slots as they come due. Synchronous and small.

Exactly-once is the backend's job (``fire`` admits a (schedule, slot) pair once, atomically with
its enqueue); this loop only decides which slot is due. Several schedulers may run at once.
A new schedule never fires for the past; after downtime a schedule with ``catch_up="once"`` fires
its latest missed slot once, then goes on with future slots.
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


def utc_now() -> datetime:
    return datetime.now(UTC)


class SchedulerLoop:
    def __init__(
        self,
        schedules: Sequence[Schedule],
        *,
        fire: Callable[[Schedule, datetime], object],
        last_slot: Callable[[str], datetime | None],
        stopping: Callable[[], bool],
        now: Callable[[], datetime] = utc_now,
        sleep: Callable[[float], None] = time.sleep,
        housekeeping: Callable[[], object] | None = None,
        housekeeping_every: float = 60.0,
    ) -> None:
        self.schedules = list(schedules)
        self.fire, self.last_slot, self.stopping = fire, last_slot, stopping
        self.now, self.sleep = now, sleep
        self.housekeeping, self.housekeeping_every = housekeeping, housekeeping_every
        self.fired = 0
        self._housekept: datetime | None = None

    def run(self) -> int:
        start = self.now()
        due = {schedule.name: self._first_due(schedule, start) for schedule in self.schedules}
        logger.info("vtasks: scheduler running %d schedule(s)", len(self.schedules))
        while not self.stopping():
            now = self.now()
            for schedule in self.schedules:
                if due[schedule.name] <= now and self._fire(schedule, schedule.latest_slot(now)):
                    due[schedule.name] = schedule.next_slot(now)
            self._keep_house(now)
            wait = min((d - self.now()).total_seconds() for d in due.values()) if due else MAX_SLEEP
            self.sleep(min(max(wait, 0.0), MAX_SLEEP))
        return 0

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
            last = self.last_slot(schedule.name)
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
