"""What the supervisor tells the world about its tree: the health file, its own process-table row,
and sd_notify (``READY``, ``STATUS``, ``WATCHDOG``). Each is a periodic duty of the main loop."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from vtasks.observability import health
from vtasks.runtime.notify import Notifier
from vtasks.runtime.slot import Slot
from vtasks.runtime.topology import SupervisorSettings

logger = logging.getLogger("vtasks.supervisor")

#: Seconds between rewrites of the health file.
HEALTH_EVERY = 1.0


class ProcessRow(Protocol):
    """The supervisor's process-table row (``vtasks.runtime.registration``); never raises."""

    #: Wall time of the last successful heartbeat (or registration), ``None`` before the first.
    last_beat: float | None

    def beat(self) -> None: ...

    def close(self) -> None: ...

    def remove(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Tree:
    """The supervisor's state as the reports see it."""

    slots: Sequence[Slot]
    live: int
    stopping: bool
    started: float
    #: ``(replaced, total)`` while a reload runs.
    reloading: tuple[int, int] | None = None

    def names(self, *, running: bool = False, up: bool = False) -> set[str]:
        return {
            slot.spec.name
            for slot in self.slots
            if (not running or slot.pid is not None) and (not up or slot.pid and slot.ready)
        }

    def crash_looping(self) -> list[str]:
        return [slot.spec.name for slot in self.slots if slot.failures >= health.CRASH_LOOP]

    def status(self) -> str:
        """The one-line ``STATUS=``: ``2/3 child(ren) up; crash-looping: w.3``."""
        if self.stopping:
            return f"stopping: {self.live} child(ren) draining"
        text = f"{len(self.names(up=True))}/{len(self.names())} child(ren) up"
        if self.reloading is not None:
            text = f"reloading ({self.reloading[0]}/{self.reloading[1]} replaced): {text}"
        looping = self.crash_looping()
        return f"{text}; crash-looping: {', '.join(looping)}" if looping else text


class Reporter:
    def __init__(self, *, notifier: Notifier | None = None, row: ProcessRow | None = None) -> None:
        self.notifier = notifier or Notifier()
        self.row = row
        self.ready_sent = False
        self._status_sent = ""
        #: Next run of each periodic duty.
        self._next: dict[str, float] = {}
        self._born: float | None = None

    def tick(self, tree: Tree, settings: SupervisorSettings, now: float) -> None:
        if settings.health_file and self._due("health", HEALTH_EVERY, now):
            _write_health(settings.health_file, tree, self._row_heartbeat_at())
        if self.row is not None and self._due("beat", settings.heartbeat_interval, now):
            self.row.beat()
        interval = self.notifier.watchdog_interval
        if interval and self._due("watchdog", interval, now):
            self.notifier.watchdog()
        self._announce_ready(tree, settings.ready_timeout, now)
        text = tree.status()
        if text != self._status_sent:
            self._status_sent = text
            self.notifier.status(text)

    def wake_times(self, tree: Tree, settings: SupervisorSettings) -> list[float]:
        """When ``tick`` next has something to do."""
        times = list(self._next.values())
        if not self.ready_sent:
            times.append(tree.started + settings.ready_timeout)
        return times

    def _row_heartbeat_at(self) -> float | None:
        if self.row is None:
            return None
        if self.row.last_beat is not None:
            return self.row.last_beat
        if self._born is None:
            self._born = time.time()
        return self._born  # no heartbeat yet: the row is as old as this supervisor's first report

    def reloaded(self, status: str) -> None:
        """A reload ended (done, rejected or abandoned): ``READY=1`` again, if it was ever sent."""
        if self.ready_sent:
            self.notifier.ready(status)

    def before_fork(self) -> None:
        if self.row is not None:
            self.row.close()  # its connections must not cross fork()

    def leave(self) -> None:
        if self.row is not None:
            self.row.remove()

    def _due(self, duty: str, interval: float, now: float) -> bool:
        if now < self._next.get(duty, float("-inf")):
            return False
        self._next[duty] = now + interval
        return True

    def _announce_ready(self, tree: Tree, timeout: float, now: float) -> None:
        """``READY=1`` once every child of the first topology is up (or after ``timeout``)."""
        if self.ready_sent or tree.stopping:
            return
        slots = tree.slots
        if all(slot.ready or (slot.pid is None and slot.start_at is None) for slot in slots):
            logger.info("vtasks: all %d child(ren) are up", len(slots))
        elif now - tree.started >= timeout:
            logger.warning("vtasks: not every child is up after %gs", timeout)
        else:
            return
        self.ready_sent = True
        self._status_sent = tree.status()
        self.notifier.ready(self._status_sent)


def _write_health(path: str, tree: Tree, row_heartbeat_at: float | None) -> None:
    report = health.Health(
        row_heartbeat_at=row_heartbeat_at,
        pid=os.getpid(),
        written_at=time.time(),
        children_expected=len(tree.names()),
        children_running=len(tree.names(running=True)),
        crash_looping=tree.crash_looping(),
    )
    try:
        health.write(path, report)
    except OSError as exc:
        logger.warning("vtasks: cannot write the health file %s: %s", path, exc)
