"""The supervisor: fork the children, reap them, restart crashes with back-off, drain on TERM.

Synchronous and single-threaded, with no event loop: nothing but plain file descriptors crosses
``fork()``. Every OS call (fork, kill, waitpid, the clock) and the signal wait (the loop's only
sleep) is injected, so the loop is unit-tested with fakes and never forks there.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NoReturn, Protocol

from vtasks.observability import health
from vtasks.runtime import exitcodes
from vtasks.runtime.child import bootstrap
from vtasks.runtime.signals import SignalQueue
from vtasks.runtime.topology import ChildSpec, SupervisorSettings

logger = logging.getLogger("vtasks.supervisor")

#: The longest the loop sleeps with nothing due: a missed SIGCHLD is noticed within this.
MAX_WAIT = 1.0
#: Seconds between rewrites of the health file.
HEALTH_EVERY = 1.0


class SignalSource(Protocol):
    def wait(self, timeout: float) -> list[int]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemCalls:
    fork: Callable[[], int] = os.fork
    kill: Callable[[int, int], None] = os.kill
    waitpid: Callable[[int, int], tuple[int, int]] = os.waitpid
    clock: Callable[[], float] = time.monotonic


@dataclass(slots=True)
class Slot:
    """A child's place in the topology; its process comes and goes, the slot stays."""

    spec: ChildSpec
    pid: int | None = None
    started_at: float = 0.0
    #: Crashes in a row (reset once a child outlives ``stable_after``).
    failures: int = 0
    #: When to (re)start the slot's process; ``None``: not to be restarted.
    start_at: float | None = 0.0
    #: SIGHUP asked this child to stop: restart it at once, whatever it exits with.
    recycling: bool = False
    restarts: int = 0


@dataclass(slots=True)
class _State:
    stopping: bool = False
    kill_at: float | None = None
    killed: bool = False
    exit_code: int = exitcodes.OK
    slots: list[Slot] = field(default_factory=list)


class Supervisor:
    """Run ``specs`` as child processes until signalled (or, in burst mode, until all are done).

    ``child_main`` runs in the forked child and never returns. ``before_fork`` runs in the parent
    before every fork (close database connections, flush stdio).
    """

    def __init__(
        self,
        specs: Sequence[ChildSpec],
        settings: SupervisorSettings,
        *,
        child_main: Callable[[ChildSpec], NoReturn],
        signals: SignalSource,
        system: SystemCalls | None = None,
        before_fork: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.child_main = child_main
        self.signals = signals
        self.system = system or SystemCalls()
        self.before_fork = before_fork
        self.state = _State(slots=[Slot(spec) for spec in specs])
        self._health_written = float("-inf")

    @property
    def slots(self) -> list[Slot]:
        return self.state.slots

    def run(self) -> int:
        """The main loop; returns the supervisor's exit code."""
        now = self.system.clock()
        for slot in self.slots:
            slot.start_at = now
        logger.info("vtasks: supervisor %d starting %d child(ren)", os.getpid(), len(self.slots))
        while True:
            self._reap()
            if self._finished():
                logger.info("vtasks: supervisor exiting with status %d", self.state.exit_code)
                return self.state.exit_code
            self._start_due()
            self._kill_stragglers()
            self._report_health()
            for signum in self.signals.wait(self._wait_time()):
                self._on_signal(signum)

    # -- signals -------------------------------------------------------------------------------
    def _on_signal(self, signum: int) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            if self.state.stopping:
                logger.warning("vtasks: second stop signal: killing the children now")
                self.state.kill_at = self.system.clock()
            else:
                logger.info("vtasks: %s: stopping the children", signal.Signals(signum).name)
                self.stop()
        elif signum == signal.SIGHUP and not self.state.stopping:
            logger.info("vtasks: SIGHUP: restarting every child")
            for slot in self._live():
                slot.recycling = True
                self._signal(slot, signal.SIGTERM)

    def stop(self, exit_code: int = exitcodes.OK) -> None:
        """TERM every child; KILL the ones still there after shutdown_timeout + margin."""
        state = self.state
        if exit_code != exitcodes.OK and state.exit_code == exitcodes.OK:
            state.exit_code = exit_code
        if state.stopping:
            return
        state.stopping = True
        state.kill_at = (
            self.system.clock() + self.settings.shutdown_timeout + self.settings.kill_margin
        )
        for slot in self.slots:
            slot.start_at = None
        for slot in self._live():
            self._signal(slot, signal.SIGTERM)

    # -- children ------------------------------------------------------------------------------
    def _start_due(self) -> None:
        if self.state.stopping:
            return
        now = self.system.clock()
        for slot in self.slots:
            if slot.pid is None and slot.start_at is not None and slot.start_at <= now:
                self._spawn(slot, now)

    def _spawn(self, slot: Slot, now: float) -> None:
        self.before_fork()
        try:
            pid = self.system.fork()
        except OSError as exc:  # EAGAIN/ENOMEM: try again later rather than die
            delay = self._back_off(slot, now)
            logger.error(
                "vtasks: could not fork %s (%s); retrying in %.1fs", slot.spec.name, exc, delay
            )
            return
        if pid == 0:
            self.child_main(slot.spec)  # never returns
        slot.pid, slot.started_at, slot.start_at = pid, now, None
        logger.info("vtasks: started %s %s as pid %d", slot.spec.kind, slot.spec.name, pid)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = self.system.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            slot = next((s for s in self.slots if s.pid == pid), None)
            if slot is not None:
                self._exited(slot, os.waitstatus_to_exitcode(status))

    def _exited(self, slot: Slot, code: int) -> None:
        """Decide a dead child's slot: done, restarted (now or after back-off), or halt all."""
        now = self.system.clock()
        ran, slot.pid = now - slot.started_at, None
        how = f"status {code}" if code >= 0 else f"signal {-code}"
        name = slot.spec.name
        if self.state.stopping:
            logger.info("vtasks: %s exited with %s", name, how)
        elif code in exitcodes.HALT_CODES:
            logger.error("vtasks: %s could not boot (%s): halting, not restarting", name, how)
            self.stop(code)
        elif slot.recycling:
            slot.recycling, slot.start_at = False, now
        elif self.settings.burst and code == exitcodes.OK:
            logger.info("vtasks: %s finished (burst)", name)
        else:
            if ran >= self.settings.stable_after:
                slot.failures = 0
            slot.restarts += 1
            delay = self._back_off(slot, now)
            logger.warning("vtasks: %s exited with %s; restarting in %.1fs", name, how, delay)

    def _back_off(self, slot: Slot, now: float) -> float:
        """Schedule the slot's next start: base, 2x base, 4x base ... capped; returns the delay."""
        slot.failures += 1
        delay = min(
            self.settings.backoff_cap, self.settings.backoff_base * 2 ** (slot.failures - 1)
        )
        slot.start_at = now + delay
        return delay

    def _kill_stragglers(self) -> None:
        state = self.state
        if not state.stopping or state.killed or state.kill_at is None:
            return
        if self.system.clock() >= state.kill_at:
            live = self._live()
            if live:
                logger.warning("vtasks: killing %d child(ren) that did not stop in time", len(live))
            for slot in live:
                self._signal(slot, signal.SIGKILL)
            state.killed = True

    def _signal(self, slot: Slot, signum: int) -> None:
        if slot.pid is None:
            return
        try:
            self.system.kill(slot.pid, signum)
        except ProcessLookupError:
            pass  # Already dead: the next reap collects it.

    # -- bookkeeping ---------------------------------------------------------------------------
    def _report_health(self) -> None:
        path = self.settings.health_file
        now = self.system.clock()
        if path is None or now - self._health_written < HEALTH_EVERY:
            return
        self._health_written = now
        report = health.Health(
            pid=os.getpid(),
            written_at=time.time(),
            children_expected=len(self.slots),
            children_running=len(self._live()),
            crash_looping=[s.spec.name for s in self.slots if s.failures >= health.CRASH_LOOP],
        )
        try:
            health.write(path, report)
        except OSError as exc:
            logger.warning("vtasks: cannot write the health file %s: %s", path, exc)

    def _live(self) -> list[Slot]:
        return [slot for slot in self.slots if slot.pid is not None]

    def _finished(self) -> bool:
        if self._live():
            return False
        return self.state.stopping or all(slot.start_at is None for slot in self.slots)

    def _wait_time(self) -> float:
        now = self.system.clock()
        due = [s.start_at for s in self.slots if s.pid is None and s.start_at is not None]
        if self.state.stopping and not self.state.killed and self.state.kill_at is not None:
            due.append(self.state.kill_at)
        if not due:
            return MAX_WAIT
        return max(0.0, min(MAX_WAIT, min(due) - now))


def supervise(
    specs: Sequence[ChildSpec],
    settings: SupervisorSettings,
    entry: Callable[[ChildSpec], int],
    *,
    before_fork: Callable[[], None] = lambda: None,
) -> int:
    """Run the real supervisor: process signals, ``os.fork``, ``entry(spec)`` in each child.

    ``entry`` comes from an upper layer (``vtasks.launch``), so the runtime never imports Django.
    """
    signals = SignalQueue()
    signals.install()
    parent = os.getpid()
    try:
        supervisor = Supervisor(
            specs, settings, signals=signals, before_fork=before_fork,
            child_main=lambda spec: bootstrap(spec, entry, signals=signals, parent_pid=parent),
        )  # fmt: skip
        return supervisor.run()
    finally:
        signals.close()
