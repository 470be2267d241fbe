"""SIGHUP's rolling replacement, readiness, sd_notify and the supervisor's row, on the fake OS."""

from __future__ import annotations

import dataclasses
import signal

import pytest

from vtasks.core.errors import ConfigError
from vtasks.runtime import exitcodes
from vtasks.runtime.child import bootstrap
from vtasks.runtime.notify import Notifier
from vtasks.runtime.topology import ChildSpec, Plan
from vtasks.runtime.worker import WorkerSettings

from .test_supervisor import KILL, TERM, Exited, World, leave, make, settings, spec

HUP = signal.SIGHUP


def pool(name: str, processes: int, concurrency: int = 4) -> list[ChildSpec]:
    worker = WorkerSettings(concurrency=concurrency)
    return [
        dataclasses.replace(spec(f"{name}.{i}"), index=i, worker=worker)
        for i in range(1, processes + 1)
    ]


def reload_to(specs: list[ChildSpec], **overrides: object):
    return lambda: Plan(specs=tuple(specs), settings=settings(**overrides))


class Recorder(Notifier):
    """The real notifier's messages, recorded with the fake time instead of sent."""

    def __init__(self, world: World, watchdog_usec: int | None = None) -> None:
        super().__init__("@recorder", watchdog_usec=watchdog_usec)
        self.world = world
        self.sent: list[tuple[float, tuple[str, ...]]] = []

    def send(self, *fields: str) -> bool:
        self.sent.append((self.world.now, fields))
        return True

    def first(self, key: str) -> list[float]:
        return [t for t, fields in self.sent if key in fields]


class Row:
    def __init__(self, world: World) -> None:
        self.world = world
        self.calls: list[tuple[float, str]] = []

    def beat(self) -> None:
        self.calls.append((self.world.now, "beat"))

    def close(self) -> None:
        self.calls.append((self.world.now, "close"))

    def remove(self) -> None:
        self.calls.append((self.world.now, "remove"))


def running(supervisor) -> list[tuple[str, int]]:
    return [(slot.spec.name, slot.spec.worker.concurrency) for slot in supervisor.slots]


# -- rolling replacement ----------------------------------------------------------------------
def test_a_changed_pool_is_replaced_one_child_at_a_time():
    world = World()
    new = pool("pool", 2, concurrency=8)
    supervisor = make(world, specs=pool("pool", 2), reload=reload_to(new))
    world.signal_at(1.0, HUP)
    world.signal_at(10.0, TERM)
    assert supervisor.run() == 0
    # Each new child starts only once the previous one is up (0.5 s), and an old child gets TERM
    # only once its replacement is up: two children serve the pool at every moment.
    assert world.forks == [(0.0, 100), (0.0, 101), (1.0, 102), (1.5, 103)]
    assert world.sent(TERM)[:2] == [(1.5, 100), (2.0, 101)]
    assert running(supervisor) == [("pool.1", 8), ("pool.2", 8)]


def test_added_removed_and_resized_pools_take_effect():
    world = World()
    old = pool("a", 2) + pool("gone", 1)
    new = pool("a", 1, concurrency=6) + pool("b", 1)
    supervisor = make(world, specs=old, reload=reload_to(new))
    world.signal_at(1.0, HUP)
    world.signal_at(10.0, TERM)
    supervisor.run()
    # a.1 replaced, then b.1 added; only then are a.2 (beyond processes) and gone.1 retired.
    assert world.forks[3:] == [(1.0, 103), (1.5, 104)]
    assert world.sent(TERM)[:3] == [(1.5, 100), (2.0, 101), (2.0, 102)]
    assert running(supervisor) == [("a.1", 6), ("b.1", 4)]


def test_an_invalid_reload_keeps_the_running_children(caplog):
    world = World()
    notifier = Recorder(world)

    def invalid() -> Plan:
        raise ConfigError("workers[0].concurrency: must be >= 1, got 0 (vtasks.yml:4)")

    supervisor = make(world, n=2, reload=invalid, notifier=notifier)
    world.signal_at(1.0, HUP)
    world.signal_at(3.0, TERM)
    assert supervisor.run() == 0
    assert len(world.forks) == 2 and world.sent(TERM) == [(3.0, 100), (3.0, 101)]
    assert "reload rejected: workers[0].concurrency: must be >= 1, got 0 (vtasks.yml:4)" in (
        caplog.text
    )
    reload = [fields[0] for t, fields in notifier.sent if t == 1.0 and fields[0] != "WATCHDOG=1"]
    assert reload == ["RELOADING=1", "READY=1"]


def test_a_new_child_that_crashes_leaves_the_old_one_serving_until_it_is_up():
    world = World()
    supervisor = make(world, reload=reload_to(pool("pool", 1, concurrency=2)))
    world.on_start = [("run",), ("exit", 1, 0.1), ("exit", 1, 0.1)]
    world.signal_at(1.0, HUP)
    world.signal_at(10.0, TERM)
    supervisor.run()
    # crashes at 1.1 and 1.7 (back-off 0.5, then 1.0); the third start at 2.7 is up at 3.2
    assert [t for t, _ in world.forks] == [0.0, 1.0, 1.6, 2.7]
    assert world.sent(TERM)[0] == (3.2, 100)


def test_a_new_child_that_cannot_boot_abandons_the_reload_without_halting():
    world = World()
    supervisor = make(world, n=2, reload=reload_to(pool("pool", 2, concurrency=2)))
    world.on_start = [("run",), ("run",), ("exit", exitcodes.BOOT_ERROR, 0.2)]
    world.signal_at(1.0, HUP)
    world.signal_at(5.0, TERM)
    assert supervisor.run() == exitcodes.OK
    assert len(world.forks) == 3 and world.sent(TERM) == [(5.0, 100), (5.0, 101)]
    assert supervisor.state.rollout is None


def test_a_second_sighup_supersedes_an_unfinished_reload():
    world = World()
    second = pool("pool", 1, concurrency=9)
    plans = iter([reload_to(pool("pool", 1, concurrency=2)), reload_to(second)])
    supervisor = make(world, reload=lambda: next(plans)())
    world.on_start = [("run",), ("mute",)]  # the first reload's child never reports itself up
    world.signal_at(1.0, HUP)
    world.signal_at(2.0, HUP)
    world.signal_at(10.0, TERM)
    supervisor.run()
    assert world.forks == [(0.0, 100), (1.0, 101), (2.0, 102)]
    assert world.sent(TERM)[:2] == [(2.0, 101), (2.5, 100)]  # the trial child, then the old one
    assert running(supervisor) == [("pool.1", 9)]


def test_a_child_that_never_reports_up_counts_as_up_after_the_ready_timeout():
    world = World()
    supervisor = make(world, reload=reload_to(pool("pool", 1), ready_timeout=4.0))
    world.on_start = [("run",), ("mute",)]
    world.signal_at(1.0, HUP)
    world.signal_at(10.0, TERM)
    supervisor.run()
    assert world.sent(TERM)[0] == (5.0, 100)


def test_a_replaced_child_that_does_not_stop_is_killed():
    world = World()
    supervisor = make(world, reload=reload_to(pool("pool", 1)))
    world.stubborn.add(100)
    world.signal_at(1.0, HUP)
    world.signal_at(30.0, TERM)
    supervisor.run()
    assert world.sent(KILL) == [(1.5 + 10.0 + 5.0, 100)]


def test_term_during_a_reload_stops_old_and_new_children():
    world = World()
    supervisor = make(world, n=2, reload=reload_to(pool("pool", 2)))
    world.signal_at(1.0, HUP)
    world.signal_at(1.7, TERM)
    assert supervisor.run() == 0
    assert sorted(pid for _, pid in world.sent(TERM)) == [100, 101, 102, 103]
    assert world.live == set() and world.sent(KILL) == []


# -- sd_notify and the process-table row ------------------------------------------------------
def test_ready_once_every_child_is_up_then_reloading_ready_and_stopping():
    world = World()
    notifier = Recorder(world)
    world.on_start = [("run",), ("exit", 1, 0.2)]  # pool.2 crashes once: READY waits for it
    supervisor = make(world, n=2, reload=reload_to(pool("pool", 2)), notifier=notifier)
    world.signal_at(3.0, HUP)
    world.signal_at(6.0, TERM)
    supervisor.run()
    assert notifier.first("READY=1") == [1.2, 4.0]  # restart at 0.7, up at 1.2; reload done at 4
    assert notifier.first("RELOADING=1") == [3.0] and notifier.first("STOPPING=1") == [6.0]
    statuses = [f[-1] for _, f in notifier.sent if f[-1].startswith("STATUS=")]
    assert statuses[0] == "STATUS=0/2 child(ren) up"
    assert "STATUS=reloading (0/2 replaced): 2/2 child(ren) up" in statuses


def test_ready_is_sent_after_the_ready_timeout_even_with_a_crash_looping_child():
    world = World()
    notifier = Recorder(world)
    world.on_start = [("run",), *[("exit", 1, 0.0)] * 20]
    supervisor = make(world, n=2, notifier=notifier, ready_timeout=5.0)
    world.signal_at(20.0, TERM)
    supervisor.run()
    assert notifier.first("READY=1") == [5.0]


def test_watchdog_pings_at_half_the_interval():
    world = World()
    notifier = Recorder(world, watchdog_usec=2_000_000)
    supervisor = make(world, notifier=notifier)
    world.signal_at(4.5, TERM)
    supervisor.run()
    assert notifier.first("WATCHDOG=1") == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]  # until the drain ends


def test_the_row_beats_every_interval_closes_before_each_fork_and_is_removed_at_exit():
    world = World()
    row = Row(world)
    world.on_start = [("exit", 1, 1.2)]
    supervisor = make(world, row=row, heartbeat_interval=1.0)
    world.signal_at(3.0, TERM)
    supervisor.run()
    assert row.calls == [
        (0.0, "close"), (0.0, "beat"), (1.0, "beat"),
        (1.7, "close"), (2.0, "beat"), (3.0, "beat"), (4.0, "remove"),
    ]  # fmt: skip


def test_a_child_keeps_running_through_a_sighup_to_its_process_group():
    """Only the supervisor acts on SIGHUP; the default action would kill the child."""
    before = signal.getsignal(HUP)
    seen = []
    try:
        with pytest.raises(Exited) as info:
            bootstrap(spec("pool.1"), lambda s: seen.append(signal.getsignal(HUP)) or 0,
                      signals=None, exit=leave)  # fmt: skip
    finally:
        signal.signal(HUP, before)
    assert info.value.code == 0
    assert callable(seen[0]) and seen[0] not in (signal.SIG_DFL, signal.SIG_IGN)
