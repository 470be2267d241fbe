"""Firing schedule slots through the database backend, and VTASKS_SCHEDULE parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.tasks import task_backends
from django.test import override_settings

from vtasks.core.cron import Schedule
from vtasks.core.errors import ConfigError
from vtasks.models import ScheduleSlot, TaskRecord
from vtasks.scheduler import crontab, schedules_from_settings

SLOT = datetime(2026, 1, 1, 5, 0, tzinfo=UTC)


@pytest.fixture
def clean(db_alias):
    ScheduleSlot.objects.using(db_alias).all().delete()
    return db_alias


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
    first = backend.fire_slot(schedule, SLOT)
    assert first is not None and first.args == [1, 2] and first.task.priority == 5
    assert backend.fire_slot(schedule, SLOT) is None
    assert TaskRecord.objects.using(clean).filter(queue_name="q").count() == 1
    assert backend.last_slot("report") == SLOT and backend.last_slot("other") is None


def test_a_slot_whose_enqueue_fails_is_not_spent(clean):
    backend = task_backends[clean]
    bad = Schedule(name="bad", task="tests.tasks.echo", every=60, args=(float("nan"),))
    with pytest.raises(TypeError):
        backend.fire_slot(bad, SLOT)
    assert not ScheduleSlot.objects.using(clean).exists()
    with pytest.raises(TypeError, match="not a declared task"):
        backend.fire_slot(Schedule(name="plain", task="tests.tasks.not_a_task", every=60), SLOT)


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
