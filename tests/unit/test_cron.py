from datetime import UTC, datetime

import pytest

from vtasks.core.cron import Schedule, crontab, slot_key
from vtasks.core.errors import ConfigError


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_intervals_are_aligned_to_the_epoch_so_every_scheduler_agrees():
    every = Schedule(name="s", task="t", every=60)
    assert every.next_slot(at("2026-01-01T10:00:30")) == at("2026-01-01T10:01:00")
    assert every.next_slot(at("2026-01-01T10:01:00")) == at("2026-01-01T10:02:00")
    assert every.latest_slot(at("2026-01-01T10:01:59")) == at("2026-01-01T10:01:00")


def test_cron_in_a_time_zone_and_with_seconds():
    daily = Schedule(name="d", task="t", cron=crontab(hour=5, minute=0), time_zone="Europe/Paris")
    assert daily.next_slot(at("2026-01-01T00:00:00")) == at("2026-01-01T04:00:00")  # 05:00 CET
    assert daily.latest_slot(at("2026-01-01T04:00:00")) == at("2026-01-01T04:00:00")
    seconds = Schedule(name="x", task="t", cron="* * * * * */10")
    assert seconds.next_slot(at("2026-01-01T00:00:01")) == at("2026-01-01T00:00:10")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of cron or every"),
        ({"cron": "* * * * *", "every": 5}, "exactly one"),
        ({"every": 0}, "every must be > 0"),
        ({"cron": "not cron"}, "invalid cron expression"),
        ({"every": 5, "time_zone": "Mars/Base"}, "unknown time zone"),
    ],
)
def test_bad_schedules_are_named(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Schedule(name="bad", task="t", **kwargs)


def test_slot_keys_are_stable_text():
    assert slot_key(at("2026-01-01T10:00:00")) == "2026-01-01T10:00:00.000000Z"
