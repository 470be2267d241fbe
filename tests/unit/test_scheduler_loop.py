from datetime import UTC, datetime, timedelta

from vtasks.core.cron import Schedule
from vtasks.runtime.scheduler import SchedulerLoop

T0 = datetime(2026, 1, 1, 10, 0, 0, 500000, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=max(seconds, 0.01))


def run(
    schedule: Schedule, *, last: datetime | None, seconds: float, fail_first: int = 0
) -> list[datetime]:
    clock, fired = Clock(), []
    failures = {"left": fail_first}

    def fire(s: Schedule, slot: datetime) -> object:
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("database down")
        fired.append(slot)
        return object()

    loop = SchedulerLoop(
        [schedule], fire=fire, last_slot=lambda name: last, now=lambda: clock.now, sleep=clock.sleep,
        stopping=lambda: clock.now >= T0 + timedelta(seconds=seconds),
    )  # fmt: skip
    assert loop.run() == 0
    return fired


def at(seconds: int) -> datetime:
    return T0.replace(microsecond=0) + timedelta(seconds=seconds)


def test_a_new_schedule_fires_only_future_slots():
    assert run(Schedule(name="s", task="t", every=1), last=None, seconds=3.2) == [
        at(1),
        at(2),
        at(3),
    ]


def test_after_downtime_the_latest_missed_slot_fires_once():
    fired = run(Schedule(name="s", task="t", every=1), last=at(-60), seconds=1.2)
    assert fired == [at(0), at(1)]


def test_catch_up_skip_fires_only_future_slots():
    schedule = Schedule(name="s", task="t", every=1, catch_up="skip")
    assert run(schedule, last=at(-60), seconds=1.2) == [at(1)]


def test_a_failed_fire_is_retried_for_the_same_slot():
    assert run(Schedule(name="s", task="t", every=10), last=None, seconds=11, fail_first=2) == [
        at(10)
    ]


def test_housekeeping_runs_now_and_then():
    clock, calls = Clock(), []
    loop = SchedulerLoop(
        [], fire=lambda s, slot: None, last_slot=lambda name: None, now=lambda: clock.now,
        sleep=clock.sleep, stopping=lambda: clock.now >= T0 + timedelta(seconds=130),
        housekeeping=lambda: calls.append(clock.now), housekeeping_every=60,
    )  # fmt: skip
    loop.run()
    assert len(calls) == 3  # at 0, 60 and 120 seconds


def test_reload_takes_up_added_changed_and_removed_schedules():
    clock, fired = Clock(), []
    a, b = Schedule(name="a", task="t", every=1), Schedule(name="b", task="t", every=2)
    plans = {0: [a], 3: [a, b], 6: [b.__class__(name="b", task="t", every=1)], 9: []}

    def current() -> list[Schedule]:
        elapsed = (clock.now - T0).total_seconds()
        return plans[max(t for t in plans if t <= elapsed)]

    loop = SchedulerLoop(
        [], fire=lambda s, slot: fired.append((s.name, slot)), last_slot=lambda s: None,
        now=lambda: clock.now, sleep=clock.sleep, reload=current, reload_every=1,
        stopping=lambda: clock.now >= T0 + timedelta(seconds=12),
    )  # fmt: skip
    assert loop.run() == 0
    assert [(name, (slot - at(0)).total_seconds()) for name, slot in fired] == [
        ("a", 1), ("a", 2), ("a", 3),
        ("a", 4), ("b", 4),  # b is read at 3.5 s: new, so its first slot is the next one
        ("a", 5), ("a", 6), ("b", 6),
        ("b", 7), ("b", 8), ("b", 9),  # read at 6.5 s: b every second now, a gone; 9.5 s: none
    ]  # fmt: skip


def test_a_failed_reload_keeps_the_schedules():
    clock, fired = Clock(), []

    def broken() -> list[Schedule]:
        raise ConnectionError("database down")

    loop = SchedulerLoop(
        [Schedule(name="s", task="t", every=1)], fire=lambda s, slot: fired.append(slot),
        last_slot=lambda s: None, now=lambda: clock.now, sleep=clock.sleep, reload=broken,
        stopping=lambda: clock.now >= T0 + timedelta(seconds=2.2),
    )  # fmt: skip
    assert loop.run() == 0 and fired == [at(1), at(2)]
