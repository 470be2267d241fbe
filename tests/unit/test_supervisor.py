"""The supervisor loop against a fake OS: no fork, no sleep; time moves only when the loop waits."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

import pytest

from vtasks.runtime import exitcodes
from vtasks.runtime.child import bootstrap
from vtasks.runtime.signals import SignalQueue
from vtasks.runtime.supervisor import Supervisor, SystemCalls
from vtasks.runtime.topology import ChildSpec, SupervisorSettings
from vtasks.runtime.worker import WorkerSettings

TERM, KILL = signal.SIGTERM, signal.SIGKILL


def exited(code: int) -> int:
    return code << 8  # a raw wait status, as os.waitpid returns it


def spec(name: str) -> ChildSpec:
    return ChildSpec(
        name=name, pool=name.split(".")[0], index=1, kind="worker", backend="default",
        worker=WorkerSettings(),
    )  # fmt: skip


class World:
    """A fake OS and clock. Children follow scripts: what they do at start and on TERM."""

    def __init__(self) -> None:
        self.now = 0.0
        self.next_pid = 100
        self.forks: list[tuple[float, int]] = []
        self.kills: list[tuple[float, int, int]] = []
        self.live: set[int] = set()
        self.events: list[tuple[float, Callable[[], int | None]]] = []
        #: Per fork, in order: ("run",) | ("exit", code, after) | ("mute",) (runs, never reports
        #: itself up); default "run". A running child reports itself up ``ready_after`` seconds in.
        self.on_start: list[tuple] = []
        self.ready_after = 0.5
        self.announced: list[int] = []
        #: pids that ignore TERM.
        self.stubborn: set[int] = set()
        self.drain = 1.0
        self.fork_error = 0
        self.steps = 0

    # -- system calls ----------------------------------------------------------------------------
    def fork(self) -> int:
        if self.fork_error:
            self.fork_error -= 1
            raise BlockingIOError("fork: EAGAIN")
        pid, self.next_pid = self.next_pid, self.next_pid + 1
        self.forks.append((self.now, pid))
        self.live.add(pid)
        plan = self.on_start.pop(0) if self.on_start else ("run",)
        if plan[0] == "exit":
            self.exit_at(self.now + plan[2], pid, exited(plan[1]))
        if plan[0] != "mute":
            self.events.append((self.now + self.ready_after, lambda: self._announce(pid)))
        return pid

    def _announce(self, pid: int) -> None:
        if pid in self.live:
            self.announced.append(pid)

    def collect(self) -> list[int]:
        """The readiness source: pids that reported themselves up."""
        announced, self.announced = self.announced, []
        return announced

    def kill(self, pid: int, sig: int) -> None:
        self.kills.append((self.now, pid, sig))
        if pid not in self.live:
            raise ProcessLookupError(pid)
        if sig == KILL:
            self.exit_at(self.now, pid, KILL)
        elif sig == TERM and pid not in self.stubborn:
            self.exit_at(self.now + self.drain, pid, exited(0))

    def waitpid(self, pid: int, flags: int) -> tuple[int, int]:
        assert pid == -1 and flags == os.WNOHANG
        for i, (pid_, status) in enumerate(self.reaped):
            del self.reaped[i]
            return pid_, status
        if not self.live:
            raise ChildProcessError
        return 0, 0

    def clock(self) -> float:
        return self.now

    # -- the signal wait: the loop's only sleep ----------------------------------------------------
    def wait(self, timeout: float) -> list[int]:
        self.steps += 1
        assert self.steps < 10_000, "the loop spins"
        assert timeout >= 0
        target = self.now + timeout
        due = [t for t, _ in self.events if t <= target]
        if due:
            self.now = max(self.now, min(due))
        else:
            self.now = target
        received = []
        for event in [e for e in self.events if e[0] <= self.now]:
            self.events.remove(event)
            sig = event[1]()
            if sig is not None:
                received.append(sig)
        return received

    # -- scripting -------------------------------------------------------------------------------
    reaped: list[tuple[int, int]]

    def exit_at(self, when: float, pid: int, status: int) -> None:
        def die() -> None:
            if pid in self.live:
                self.live.discard(pid)
                self.reaped.append((pid, status))
            return None

        self.events.append((when, die))

    def signal_at(self, when: float, sig: int) -> None:
        self.events.append((when, lambda: sig))

    def sent(self, sig: int) -> list[tuple[float, int]]:
        return [(t, pid) for t, pid, s in self.kills if s == sig]


def settings(**overrides: object) -> SupervisorSettings:
    options: dict = {"shutdown_timeout": 10.0, "kill_margin": 5.0, "backoff_base": 0.5,
                     "backoff_cap": 8.0, "stable_after": 30.0, **overrides}  # fmt: skip
    return SupervisorSettings(**options)


def make(
    world: World, n: int = 1, *, specs: list[ChildSpec] | None = None, reload=None, row=None,
    notifier=None, **overrides: object,
) -> Supervisor:  # fmt: skip
    world.reaped = []

    def child_main(child: ChildSpec):
        raise AssertionError("the fake fork never returns 0")

    system = SystemCalls(fork=world.fork, kill=world.kill, waitpid=world.waitpid, clock=world.clock)
    return Supervisor(
        specs or [spec(f"pool.{i + 1}") for i in range(n)], settings(**overrides),
        child_main=child_main, signals=world, system=system, readiness=world, reload=reload,
        row=row, notifier=notifier,
    )  # fmt: skip


# -- restarts ---------------------------------------------------------------------------------
def test_a_crashing_child_is_restarted_with_capped_exponential_back_off():
    world = World()
    world.on_start = [("exit", 1, 0.0)] * 6
    world.signal_at(100.0, TERM)
    assert make(world).run() == 0
    starts = [t for t, _ in world.forks]
    # crashes at once each time: waits 0.5, 1, 2, 4, 8, then the cap (8)
    assert starts == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 23.5]
    assert len(world.sent(TERM)) == 1 and world.sent(KILL) == []


def test_a_child_that_ran_long_enough_starts_its_back_off_afresh():
    world = World()
    world.on_start = [("exit", 1, 0.0), ("exit", 1, 0.0), ("exit", 1, 40.0)]
    world.signal_at(100.0, TERM)
    supervisor = make(world)
    assert supervisor.run() == 0
    assert [t for t, _ in world.forks] == [0.0, 0.5, 1.5, 42.0]  # 1.5 + 40 ran, then 0.5 again
    assert supervisor.slots[0].restarts == 3


def test_a_child_killed_after_it_came_up_restarts_after_the_base_delay_every_time():
    """Kills from outside (OOM, an operator, chaos) do not push a serving slot to the cap."""
    world = World()
    supervisor = make(world)
    for at in (2.0, 4.0, 6.0, 8.0, 10.0):  # each child is up 0.5 s after its start
        world.events.append((at, lambda: world.kill(max(world.live), KILL)))
    world.signal_at(20.0, TERM)
    assert supervisor.run() == 0
    assert [t for t, _ in world.forks] == [0.0, 2.5, 4.5, 6.5, 8.5, 10.5]
    assert supervisor.slots[0].failures == 5  # still counted: health reports a crash loop


def test_a_killed_child_is_restarted_and_other_children_are_left_alone():
    world = World()
    supervisor = make(world, n=2)
    world.events.append((3.0, lambda: world.kill(100, KILL)))
    world.signal_at(10.0, TERM)
    assert supervisor.run() == 0
    assert [pid for _, pid in world.forks] == [100, 101, 102]
    assert world.forks[2][0] == 3.5
    assert {pid for _, pid in world.sent(TERM)} == {101, 102}


def test_a_fenced_worker_is_restarted():
    world = World()
    world.on_start = [("exit", exitcodes.FENCED, 5.0)]
    world.signal_at(20.0, TERM)
    make(world).run()
    assert [t for t, _ in world.forks] == [0.0, 5.5]


def test_fork_failures_are_retried_later():
    world = World()
    world.fork_error = 2
    world.signal_at(10.0, TERM)
    assert make(world).run() == 0
    assert [t for t, _ in world.forks] == [1.5]


# -- halting ----------------------------------------------------------------------------------
def test_a_boot_error_halts_everything_without_restarting():
    world = World()
    world.on_start = [("exit", exitcodes.BOOT_ERROR, 1.0)]
    supervisor = make(world, n=3)
    assert supervisor.run() == exitcodes.BOOT_ERROR
    assert len(world.forks) == 3  # no restart
    assert sorted(pid for _, pid in world.sent(TERM)) == [101, 102]
    assert world.now == pytest.approx(2.0)  # the others drained (1 s) and the loop ended


# -- stopping ---------------------------------------------------------------------------------
def test_term_drains_then_kills_stragglers():
    world = World()
    supervisor = make(world, n=2)
    world.stubborn.add(101)
    world.signal_at(2.0, TERM)
    assert supervisor.run() == 0
    assert world.sent(TERM) == [(2.0, 100), (2.0, 101)]
    assert world.sent(KILL) == [(17.0, 101)]  # 2 + shutdown_timeout 10 + margin 5
    assert len(world.forks) == 2  # nothing restarted while stopping


def test_sigint_behaves_like_term_and_a_second_one_kills_at_once():
    world = World()
    supervisor = make(world)
    world.stubborn.add(100)
    world.signal_at(1.0, signal.SIGINT)
    world.signal_at(3.0, signal.SIGINT)
    assert supervisor.run() == 0
    assert world.sent(TERM) == [(1.0, 100)] and world.sent(KILL) == [(3.0, 100)]


def test_a_clean_stop_takes_only_as_long_as_the_drain():
    world = World()
    world.drain = 0.25
    world.signal_at(1.0, TERM)
    assert make(world, n=4).run() == 0
    assert world.now == pytest.approx(1.25) and world.sent(KILL) == []


def test_sighup_replaces_every_child_one_at_a_time():
    world = World()
    supervisor = make(world, n=2)
    world.signal_at(1.0, signal.SIGHUP)
    world.signal_at(5.0, TERM)
    assert supervisor.run() == 0
    # new pool.1 at 1.0, up at 1.5: old pool.1 TERMed, new pool.2 started; up at 2.0: old pool.2
    assert world.forks == [(0.0, 100), (0.0, 101), (1.0, 102), (1.5, 103)]
    assert world.sent(TERM)[:2] == [(1.5, 100), (2.0, 101)]
    assert [slot.pid for slot in supervisor.slots] == [None, None]
    assert all(slot.failures == 0 for slot in supervisor.slots)


def test_sigchld_only_wakes_the_loop():
    world = World()
    world.signal_at(1.0, signal.SIGCHLD)
    world.signal_at(2.0, TERM)
    assert make(world).run() == 0 and len(world.forks) == 1


# -- burst ------------------------------------------------------------------------------------
def test_burst_exits_zero_once_every_child_finished():
    world = World()
    world.on_start = [("exit", 0, 2.0), ("exit", 1, 1.0), ("exit", 0, 3.0)]
    supervisor = make(world, n=2, burst=True)
    assert supervisor.run() == 0
    # pool.2 crashed at 1.0, restarted at 1.5, finished at 4.5
    assert [t for t, _ in world.forks] == [0.0, 0.0, 1.5]
    assert world.now == pytest.approx(4.5) and world.kills == []


def test_the_child_path_runs_child_main_in_the_child():
    world = World()
    world.reaped = []
    seen = []

    class Forked(Exception):
        pass

    def child_main(child: ChildSpec):
        seen.append(child.name)
        raise Forked

    system = SystemCalls(fork=lambda: 0, kill=world.kill, waitpid=world.waitpid, clock=world.clock)
    supervisor = Supervisor(
        [spec("pool.1")], SupervisorSettings(shutdown_timeout=1), child_main=child_main,
        signals=world, system=system,
    )  # fmt: skip
    with pytest.raises(Forked):
        supervisor.run()
    assert seen == ["pool.1"]


# -- the real pieces --------------------------------------------------------------------------
def test_signal_queue_records_and_wakes_and_restores():
    before = signal.getsignal(signal.SIGHUP)
    queue = SignalQueue()
    queue.install()
    try:
        assert queue.wait(0) == []
        os.kill(os.getpid(), signal.SIGHUP)
        assert queue.wait(1.0) == [signal.SIGHUP]
        os.kill(os.getpid(), signal.SIGINT)  # recorded, not a KeyboardInterrupt
        assert queue.wait(1.0) == [signal.SIGINT]
        assert queue.wait(0.01) == []
    finally:
        queue.close()
    assert signal.getsignal(signal.SIGHUP) == before
    queue.close()  # idempotent


class Exited(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def leave(code: int):
    raise Exited(code)


@pytest.mark.parametrize(
    ("entry", "code"),
    [
        (lambda s: 0, 0),
        (lambda s: exitcodes.FENCED, 3),
        (lambda s: (_ for _ in ()).throw(RuntimeError("boom")), exitcodes.CRASH),
        (lambda s: (_ for _ in ()).throw(SystemExit(exitcodes.BOOT_ERROR)), 4),
        (lambda s: (_ for _ in ()).throw(SystemExit("message")), 1),
    ],
)
def test_bootstrap_always_leaves_through_exit(entry, code):
    with pytest.raises(Exited) as info:
        bootstrap(spec("pool.1"), entry, signals=None, exit=leave)
    assert info.value.code == code
