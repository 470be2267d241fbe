"""Firing schedule slots through every backend, dynamic schedules, and where schedules come from."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections
from django.tasks import task_backends
from django.test import override_settings
from django.utils import timezone

from tests import storage
from tests.helpers import wait_for
from vtasks import schedules
from vtasks.core.cron import Schedule
from vtasks.core.errors import ConfigError
from vtasks.runtime.scheduler import SchedulerLoop
from vtasks.scheduler import ScheduleSet, crontab, schedules_from_settings, static_schedules

SLOT = datetime(2026, 1, 1, 5, 0, tzinfo=UTC)


@pytest.fixture
def clean(alias: str) -> Iterator[str]:
    """``alias`` without fired slots or dynamic schedules (Valkey: ``alias`` cleared them)."""
    if not storage.is_valkey(alias):
        from vtasks.models import ScheduleSlot, StoredSchedule

        ScheduleSlot.objects.using(alias).all().delete()
        StoredSchedule.objects.using(alias).all().delete()
    yield alias


def test_a_slot_fires_once_with_its_task(clean):
    backend = task_backends[clean]
    schedule = Schedule(
        name="report",
        task="tests.tasks.add",
        cron="0 5 * * *",
        args=(1, 2),
        queue_name="q",
        priority=5,
    )
    assert backend.last_slot(schedule) is None
    first = backend.fire_slot(schedule, SLOT)
    assert first is not None and first.args == [1, 2] and first.task.priority == 5
    assert backend.fire_slot(schedule, SLOT) is None
    assert storage.count(clean, queue_name="q") == 1
    assert backend.get_result(first.id).status == "READY"
    other = Schedule(name="other", task="tests.tasks.add", every=60, queue_name="q")
    assert backend.last_slot(schedule) == SLOT and backend.last_slot(other) is None
    later = backend.fire_slot(schedule, SLOT + timedelta(days=1))
    assert later is not None and backend.last_slot(schedule) == SLOT + timedelta(days=1)


def test_a_slot_whose_enqueue_fails_is_not_spent(clean):
    backend = task_backends[clean]
    bad = Schedule(name="bad", task="tests.tasks.echo", every=60, args=(float("nan"),))
    with pytest.raises(TypeError):
        backend.fire_slot(bad, SLOT)
    assert backend.last_slot(bad) is None and storage.count(clean) == 0
    with pytest.raises(TypeError, match="not a declared task"):
        backend.fire_slot(Schedule(name="plain", task="tests.tasks.not_a_task", every=60), SLOT)


def test_old_slot_rows_are_pruned_but_each_schedule_keeps_its_latest(clean):
    if storage.is_valkey(clean):
        pytest.skip("Valkey keeps one expiring key per schedule, not a row per slot")
    from vtasks.models import ScheduleSlot

    backend = task_backends[clean]
    every = Schedule(name="every", task="tests.tasks.add", every=60, args=(1, 1))
    weekly = Schedule(name="weekly", task="tests.tasks.add", cron="0 5 * * 1", args=(1, 1))
    for minutes in range(3):
        backend.fire_slot(every, SLOT + timedelta(minutes=minutes))
    backend.fire_slot(weekly, SLOT)
    rows = ScheduleSlot.objects.using(clean)
    rows.update(fired_at=timezone.now() - timedelta(days=2))
    backend.fire_slot(every, SLOT + timedelta(minutes=3))  # a fresh row: kept
    assert backend.prune_slots() == 3
    assert sorted(rows.values_list("schedule", "slot")) == [
        ("every", "2026-01-01T05:03:00.000000Z"),
        ("weekly", "2026-01-01T05:00:00.000000Z"),  # two days old, but weekly's latest
    ]
    assert backend.last_slot(every) == SLOT + timedelta(minutes=3)


def test_a_scheduler_survives_a_lost_database_connection(clean):
    """A database restart fails one tick, not every tick after it (``_fresh``)."""
    if clean != "pg":
        pytest.skip("a server connection to lose")
    from vtasks.scheduler import _fresh

    last_slot = _fresh(task_backends[clean].last_slot)
    schedule = Schedule(name="s", task="tests.tasks.add", every=60)
    assert last_slot(schedule) is None
    connections[clean].connection.close()  # as a server restart would
    with pytest.raises(Exception, match="closed"):
        last_slot(schedule)
    assert last_slot(schedule) is None


def test_valkey_slot_key_refuses_older_slots_and_expires(clean):
    if not storage.is_valkey(clean):
        pytest.skip("the Valkey slot key")
    from vtasks.drivers.valkey.client import sync_client
    from vtasks.drivers.valkey.keys import queue_keys

    backend = task_backends[clean]
    schedule = Schedule(name="tick", task="tests.tasks.add", every=60, args=(1, 1))
    assert backend.fire_slot(schedule, SLOT) is not None
    # A lagging scheduler's older slot never fires after a newer one did.
    assert backend.fire_slot(schedule, SLOT - timedelta(minutes=1)) is None
    key = queue_keys(backend.prefix, "default").schedule("tick")
    ttl = sync_client(backend.url, backend.cluster).pttl(key)
    assert timedelta(days=6) < timedelta(milliseconds=ttl) <= timedelta(days=7)
    assert storage.count(clean) == 1


def test_dynamic_schedules_add_list_remove(clean):
    added = schedules.add("dyn:1", "tests.tasks.add", "*/5 * * * *", args=(1, 2), backend=clean)
    assert added.cron == "*/5 * * * *" and added.args == (1, 2) and added.time_zone == "UTC"
    schedules.add("dyn:2", "tests.tasks.echo", 30, kwargs={"a": [1]}, queue_name="q",
                  priority=-3, backend=clean)  # fmt: skip
    schedules.add("dyn:1", "tests.tasks.add", 10, args=[3, 4], backend=clean)  # replaces
    listed = {s.name: s for s in schedules.list(backend=clean)}
    assert sorted(listed) == ["dyn:1", "dyn:2"]
    assert listed["dyn:1"].every == 10.0 and listed["dyn:1"].args == (3, 4)
    assert listed["dyn:2"].kwargs == {"a": [1]} and listed["dyn:2"].queue_name == "q"
    assert listed["dyn:2"].priority == -3
    assert schedules.remove("dyn:1", backend=clean) is True
    assert schedules.remove("dyn:1", backend=clean) is False
    assert [s.name for s in schedules.list(backend=clean)] == ["dyn:2"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (("k", "tests.tasks.add", "61 * * * *"), "invalid cron expression"),
        (("k", "tests.tasks.add", 0), "every must be > 0"),
        (("k", "tests.tasks.add", True), "a cron string or seconds"),
        (("k", "tests.tasks.nowhere", 60), "cannot import the task 'tests.tasks.nowhere'"),
        (("k", "tests.tasks.not_a_task", 60), "not a declared task"),
        (("k", "tests.tasks.add", 60, (float("nan"),)), "JSON"),
        (("k", "tests.tasks.add", 60, (), None, None, 101), "priority"),
        (("", "tests.tasks.add", 60), "non-empty string"),
    ],
)
def test_dynamic_schedules_are_checked_when_added(clean, call, message):
    with pytest.raises(ConfigError, match=message):
        schedules.add(*call, backend=clean)
    assert schedules.list(backend=clean) == []


def test_a_dynamic_schedule_may_not_take_a_vtasks_schedule_name(clean):
    setting = {"nightly": {"task": "tests.tasks.noop", "schedule": "0 5 * * *"}}
    with override_settings(VTASKS_SCHEDULE=setting):
        with pytest.raises(ConfigError, match="VTASKS_SCHEDULE has a schedule of that name"):
            schedules.add("nightly", "tests.tasks.add", 60, args=(1, 2), backend=clean)


def test_a_running_scheduler_picks_up_added_and_removed_schedules(clean):
    """No restart: the loop re-reads the backend's schedules (here every 0.3 s)."""
    backend = task_backends[clean]
    stop = threading.Event()
    loop = SchedulerLoop(
        [], fire=backend.fire_slot, last_slot=backend.last_slot, stopping=stop.is_set,
        reload=ScheduleSet(backend, []), reload_every=0.3,
    )  # fmt: skip

    def run() -> None:
        try:
            loop.run()
        finally:
            connections.close_all()  # this thread's own database connections

    thread = threading.Thread(target=run)
    thread.start()
    try:
        time.sleep(0.5)
        assert storage.count(clean) == 0
        schedules.add("every-second", "tests.tasks.add", 1, args=[20, 22], backend=clean)
        wait_for(lambda: storage.count(clean) >= 2, timeout=10, what="two slots of the schedule")
        schedules.remove("every-second", backend=clean)
        time.sleep(0.6)  # a reload, and a slot in flight
        fired = storage.count(clean)
        time.sleep(2.2)
        assert storage.count(clean) == fired
    finally:
        stop.set()
        thread.join(timeout=10)
    args = [r["args"] for r in storage.records(clean)]
    assert all((json.loads(a) if isinstance(a, str) else a) == [20, 22] for a in args)


def test_a_static_schedule_shadows_a_dynamic_one_of_its_name(clean):
    backend = task_backends[clean]
    backend.store_schedule("tick", {"task": "tests.tasks.add", "schedule": 5})
    backend.store_schedule("broken", {"task": "tests.tasks.add", "schedule": "nope"})
    backend.store_schedule("extra", {"task": "tests.tasks.noop", "schedule": 7})
    static = [Schedule(name="tick", task="tests.tasks.add", every=1)]
    assert ScheduleSet(backend, static)() == [
        static[0],
        Schedule(name="extra", task="tests.tasks.noop", every=7),
    ]


def test_vtasks_schedule_setting():
    with override_settings(
        TIME_ZONE="Europe/Paris",
        VTASKS_SCHEDULE={
            "nightly": {
                "task": "tests.tasks.add",
                "schedule": crontab(hour=5, minute=0),
                "args": [1, 2],
            },
            "tick": {"task": "tests.tasks.noop", "schedule": 30},
        },
    ):
        nightly, tick = schedules_from_settings()
    assert (
        nightly.cron == "0 5 * * *"
        and nightly.time_zone == "Europe/Paris"
        and nightly.args == (1, 2)
    )
    assert tick.every == 30.0
    with override_settings(VTASKS_SCHEDULE={"x": {"task": "t", "schedule": 1, "cron": "*"}}):
        with pytest.raises(ConfigError, match=r"VTASKS_SCHEDULE\['x'\]: unknown key"):
            schedules_from_settings()
    with override_settings(VTASKS_SCHEDULE={"x": {"task": "t", "schedule": [1]}}):
        with pytest.raises(ConfigError, match="a cron string or seconds"):
            schedules_from_settings()


def test_yaml_schedules_win_over_the_setting_by_name():
    from vtasks.config.models import Topology
    from vtasks.runtime.topology import child_specs

    topology = Topology.model_validate(
        {"scheduler": {"enabled": True, "schedules": {
            "tick": {"task": "tests.tasks.add", "schedule": "*/2 * * * * *", "args": [5, 5]},
            "extra": {"task": "tests.tasks.noop", "schedule": 60, "time_zone": "Asia/Tokyo"},
        }}}
    )  # fmt: skip
    (spec,) = [s for s in child_specs(topology) if s.kind == "scheduler"]
    setting = {
        "tick": {"task": "tests.tasks.add", "schedule": 1, "args": [1, 2]},
        "other": {"task": "tests.tasks.noop", "schedule": 30},
    }
    with override_settings(VTASKS_SCHEDULE=setting, TIME_ZONE="Europe/Paris"):
        found = {s.name: s for s in static_schedules(spec.schedules)}
    assert sorted(found) == ["extra", "other", "tick"]
    assert found["tick"].cron == "*/2 * * * * *" and found["tick"].args == (5, 5)
    assert found["tick"].time_zone == "Europe/Paris" and found["extra"].time_zone == "Asia/Tokyo"
    assert found["other"].every == 30.0
