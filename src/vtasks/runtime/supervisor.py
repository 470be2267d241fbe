"""The supervisor: fork the children, reap them, restart crashes with back-off, drain on TERM.

Synchronous and single-threaded, with no event loop: nothing but plain file descriptors crosses
``fork()``. Every OS call (fork, kill, waitpid, the clock) and the signal wait (the loop's only
sleep) is injected, so the loop is unit-tested with fakes and never forks there.

SIGHUP reloads: the new configuration is validated first (an invalid one is logged and the running
topology stays), then ``Rollout`` replaces the children one at a time. Children report themselves
up through ``readiness``; the supervisor keeps its own process-table row through ``row`` (on a
private event loop, with the ORM driver one thread, both closed before every fork) and speaks
sd_notify through ``notifier``.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NoReturn, Protocol

from vtasks.core.errors import ConfigError
from vtasks.runtime import exitcodes
from vtasks.runtime.notify import Notifier
from vtasks.runtime.report import ProcessRow, Reporter, Tree
from vtasks.runtime.rollout import Rollout
from vtasks.runtime.slot import Slot
from vtasks.runtime.topology import ChildSpec, Plan, SupervisorSettings

__all__ = ["Slot", "Supervisor", "SystemCalls"]

logger = logging.getLogger("vtasks.supervisor")

#: The longest the loop sleeps with nothing due: a missed SIGCHLD is noticed within this.
MAX_WAIT = 1.0


class SignalSource(Protocol):
    def wait(self, timeout: float) -> list[int]: ...


class ReadySource(Protocol):
    def collect(self) -> list[int]:
        """Pids of children that reported themselves up since the last call."""
        ...


class ChildObserver(Protocol):
    """Metrics (``vtasks.observability.metrics.TreeMetrics``); its calls must not raise."""

    def reaped(self, pid: int) -> None: ...

    def restarting(self, kind: str) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemCalls:
    fork: Callable[[], int] = os.fork
    kill: Callable[[int, int], None] = os.kill
    waitpid: Callable[[int, int], tuple[int, int]] = os.waitpid
    clock: Callable[[], float] = time.monotonic


@dataclass(slots=True)
class _State:
    stopping: bool = False
    exit_code: int = exitcodes.OK
    slots: list[Slot] = field(default_factory=list)
    #: Children a reload replaced or removed: TERMed, not restarted, forgotten once reaped.
    retiring: list[Slot] = field(default_factory=list)
    rollout: Rollout | None = None


class Supervisor:
    """Run ``specs`` as child processes until signalled (or, in burst mode, until all are done).

    ``child_main`` runs in the forked child and never returns. ``before_fork`` runs in the parent
    before every fork (close database connections, flush stdio). ``reload`` returns the plan a
    SIGHUP applies, or raises ``ConfigError``; without it a SIGHUP replaces every child as it is.
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
        readiness: ReadySource | None = None,
        reload: Callable[[], Plan] | None = None,
        row: ProcessRow | None = None,
        notifier: Notifier | None = None,
        observer: ChildObserver | None = None,
    ) -> None:
        self.settings = settings
        self.child_main = child_main
        self.signals = signals
        self.system = system or SystemCalls()
        self.before_fork = before_fork
        self.readiness = readiness
        self.reload = reload
        self.reporter = Reporter(notifier=notifier, row=row)
        self.observer = observer
        self.state = _State(slots=[Slot(spec) for spec in specs])
        self._started = 0.0

    @property
    def slots(self) -> list[Slot]:
        return self.state.slots

    def run(self) -> int:
        """The main loop; returns the supervisor's exit code."""
        now = self._started = self.system.clock()
        for slot in self.slots:
            slot.start_at = now
        logger.info("vtasks: supervisor %d starting %d child(ren)", os.getpid(), len(self.slots))
        while True:
            self._reap()
            self._collect_ready()
            if self._finished():
                return self._leave()
            self._advance_rollout()
            self._start_due()
            self._kill_stragglers()
            self.reporter.tick(self._tree(), self.settings, self.system.clock())
            for signum in self.signals.wait(self._wait_time()):
                self._on_signal(signum)

    # -- signals -------------------------------------------------------------------------------
    def _on_signal(self, signum: int) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            if self.state.stopping:
                logger.warning("vtasks: second stop signal: killing the children now")
                now = self.system.clock()
                for slot in self._live():
                    slot.kill_at = now
            else:
                logger.info("vtasks: %s: stopping the children", signal.Signals(signum).name)
                self.stop()
        elif signum == signal.SIGHUP and not self.state.stopping:
            self._reload()

    def stop(self, exit_code: int = exitcodes.OK) -> None:
        """TERM every child; KILL the ones still there after shutdown_timeout + margin."""
        state = self.state
        if exit_code != exitcodes.OK and state.exit_code == exitcodes.OK:
            state.exit_code = exit_code
        if state.stopping:
            return
        state.stopping, state.rollout = True, None
        self.reporter.notifier.stopping(f"stopping: draining {len(self._live())} child(ren)")
        for slot in self.slots:
            slot.start_at = None
        for slot in self.slots:
            self._terminate(slot)

    # -- reload --------------------------------------------------------------------------------
    def _reload(self) -> None:
        if self.settings.burst:
            logger.warning("vtasks: SIGHUP ignored: nothing is reloaded in burst mode")
            return
        logger.info("vtasks: SIGHUP: reloading the configuration")
        if self.reporter.ready_sent:
            self.reporter.notifier.reloading("reloading the configuration")
        try:
            plan = self.reload() if self.reload else self._current_plan()
        except ConfigError as exc:
            self._reject(str(exc).splitlines())
            return
        except Exception as exc:  # whatever went wrong, the running children must stay
            logger.exception("vtasks: reload rejected: reading the configuration failed")
            self._reject([repr(exc)])
            return
        if self.state.rollout is not None:
            logger.info("vtasks: reload: abandoning the unfinished reload for the new one")
            self._abandon_rollout()
        self.settings = plan.settings
        self.state.rollout = Rollout(self.slots, plan.specs)
        logger.info(
            "vtasks: reload: replacing %d child(ren) one at a time by %d",
            len(self.slots), len(plan.specs),
        )  # fmt: skip

    def _current_plan(self) -> Plan:
        return Plan(specs=tuple(slot.spec for slot in self.slots), settings=self.settings)

    def _reject(self, problems: list[str]) -> None:
        logger.error("vtasks: reload rejected: invalid configuration; the running children stay")
        for problem in problems:
            logger.error("vtasks: reload rejected: %s", problem)
        if self.state.rollout is None:
            self.reporter.reloaded(f"reload rejected: {problems[0] if problems else 'invalid'}")

    def _advance_rollout(self) -> None:
        rollout = self.state.rollout
        if rollout is None or self.state.stopping:
            return
        if rollout.advance(start=self._add, retire=self._retire):
            self.state.rollout = None
            logger.info("vtasks: reload complete: %d child(ren) running", len(self.slots))
            self.reporter.reloaded(self._tree().status())

    def _add(self, spec: ChildSpec) -> Slot:
        slot = Slot(spec, start_at=self.system.clock())
        self.slots.append(slot)
        return slot

    def _retire(self, slot: Slot) -> None:
        """Stop ``slot`` for good (a reload replaced or removed it): TERM, KILL if it lingers."""
        if slot in self.slots:
            self.slots.remove(slot)
        slot.start_at = None
        if slot.pid is None:
            return
        spec = slot.spec
        logger.info("vtasks: stopping %s %s (pid %d): replaced", spec.kind, spec.name, slot.pid)
        self.state.retiring.append(slot)
        self._terminate(slot)

    def _abandon_rollout(self) -> None:
        rollout, self.state.rollout = self.state.rollout, None
        trial = rollout.abandon() if rollout is not None else None
        if trial is not None:
            self._retire(trial)

    # -- children ------------------------------------------------------------------------------
    def _start_due(self) -> None:
        if self.state.stopping:
            return
        now = self.system.clock()
        for slot in self.slots:
            if slot.pid is None and slot.start_at is not None and slot.start_at <= now:
                self._spawn(slot, now)

    def _spawn(self, slot: Slot, now: float) -> None:
        self.reporter.before_fork()
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
        slot.ready, slot.kill_at, slot.killed = False, None, False
        logger.info("vtasks: started %s %s as pid %d", slot.spec.kind, slot.spec.name, pid)

    def _collect_ready(self) -> None:
        announced = set(self.readiness.collect()) if self.readiness is not None else set()
        now = self.system.clock()
        for slot in self.slots:
            if slot.pid is None or slot.ready:
                continue
            if slot.pid in announced:
                slot.ready = True
                spec = slot.spec
                logger.info("vtasks: %s %s (pid %d) is up", spec.kind, spec.name, slot.pid)
            elif now - slot.started_at >= self.settings.ready_timeout:
                slot.ready = True
                logger.warning(
                    "vtasks: %s (pid %d) did not report itself up within %gs; counting it as up",
                    slot.spec.name, slot.pid, self.settings.ready_timeout,
                )  # fmt: skip

    def _reap(self) -> None:
        while True:
            try:
                pid, status = self.system.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.observer is not None:
                self.observer.reaped(pid)
            slot = next((s for s in self._all() if s.pid == pid), None)
            if slot is not None:
                self._exited(slot, os.waitstatus_to_exitcode(status))

    def _exited(self, slot: Slot, code: int) -> None:
        """Decide a dead child's slot: done, restarted (now or after back-off), or halt all."""
        now = self.system.clock()
        was_up = slot.ready
        ran, slot.pid, slot.ready = now - slot.started_at, None, False
        how = f"status {code}" if code >= 0 else f"signal {-code}"
        name = slot.spec.name
        rollout = self.state.rollout
        if slot in self.state.retiring:
            self.state.retiring.remove(slot)
            logger.info("vtasks: %s (replaced) exited with %s", name, how)
        elif self.state.stopping:
            logger.info("vtasks: %s exited with %s", name, how)
        elif code in exitcodes.HALT_CODES and rollout is not None and slot is rollout.trial:
            logger.error(
                "vtasks: %s could not boot with the new configuration (%s): reload abandoned; "
                "the other children keep running", name, how,
            )  # fmt: skip
            self._abandon_rollout()
            self.reporter.reloaded(f"reload abandoned: {name} could not boot")
        elif code in exitcodes.HALT_CODES:
            logger.error("vtasks: %s could not boot (%s): halting, not restarting", name, how)
            self.stop(code)
        elif self.settings.burst and code == exitcodes.OK:
            logger.info("vtasks: %s finished (burst)", name)
        else:
            if ran >= self.settings.stable_after:
                slot.failures = 0
            slot.restarts += 1
            if self.observer is not None:
                self.observer.restarting(slot.spec.kind)
            delay = self._back_off(slot, now, booted=was_up)
            logger.warning("vtasks: %s exited with %s; restarting in %.1fs", name, how, delay)

    def _back_off(self, slot: Slot, now: float, booted: bool = False) -> float:
        """Schedule the slot's next start: base, 2x base, 4x base ... capped; returns the delay.

        A child that had come up (``booted``: registered, serving) and then died, killed by the
        OOM killer or an operator, is restarted after ``backoff_base`` only: the doubling is for
        children that cannot boot. Its death still counts towards crash-looping in the health.
        """
        slot.failures += 1
        steps = 0 if booted else slot.failures - 1
        delay = min(self.settings.backoff_cap, self.settings.backoff_base * 2**steps)
        slot.start_at = now + delay
        return delay

    def _terminate(self, slot: Slot) -> None:
        if slot.pid is None:
            return
        slot.kill_at = (
            self.system.clock() + self.settings.shutdown_timeout + self.settings.kill_margin
        )
        self._signal(slot, signal.SIGTERM)

    def _kill_stragglers(self) -> None:
        now = self.system.clock()
        due = [
            s for s in self._live() if not s.killed and s.kill_at is not None and s.kill_at <= now
        ]
        if due:
            logger.warning("vtasks: killing %d child(ren) that did not stop in time", len(due))
        for slot in due:
            slot.killed = True
            self._signal(slot, signal.SIGKILL)

    def _signal(self, slot: Slot, signum: int) -> None:
        if slot.pid is None:
            return
        try:
            self.system.kill(slot.pid, signum)
        except ProcessLookupError:
            pass  # Already dead: the next reap collects it.

    # -- reporting -----------------------------------------------------------------------------
    def _tree(self) -> Tree:
        rollout = self.state.rollout
        return Tree(
            slots=self.slots, live=len(self._live()), stopping=self.state.stopping,
            started=self._started,
            reloading=(rollout.done, rollout.total) if rollout is not None else None,
        )  # fmt: skip

    def _leave(self) -> int:
        if not self.state.stopping:
            self.reporter.notifier.stopping("finished")
        self.reporter.leave()
        logger.info("vtasks: supervisor exiting with status %d", self.state.exit_code)
        return self.state.exit_code

    # -- bookkeeping ---------------------------------------------------------------------------
    def _all(self) -> list[Slot]:
        return [*self.slots, *self.state.retiring]

    def _live(self) -> list[Slot]:
        return [slot for slot in self._all() if slot.pid is not None]

    def _finished(self) -> bool:
        if self._live():
            return False
        return self.state.stopping or all(slot.start_at is None for slot in self.slots)

    def _wait_time(self) -> float:
        now = self.system.clock()
        due = [s.start_at for s in self.slots if s.pid is None and s.start_at is not None]
        due += [s.kill_at for s in self._live() if s.kill_at is not None and not s.killed]
        timeout = self.settings.ready_timeout
        due += [s.started_at + timeout for s in self.slots if s.pid is not None and not s.ready]
        due += self.reporter.wake_times(self._tree(), self.settings)
        if not due:
            return MAX_WAIT
        return max(0.0, min(MAX_WAIT, min(due) - now))
