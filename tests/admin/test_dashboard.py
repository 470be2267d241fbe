"""The dashboard and the pages read through a backend (processes, schedules, pause/resume), on
every backend: SQLite, PostgreSQL, MariaDB and Valkey."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from django.tasks import task_backends
from django.test import override_settings
from django.urls import reverse

from tests import tasks
from tests.admin.conftest import ALL
from tests.admin.states import ALIVE, make_states
from tests.helpers import work
from tests.storage import is_valkey
from vtasks.scheduler import schedules_from_settings

DASHBOARD = "admin:vtasks_dashboard"
SCHEDULE = {"tick": {"task": "tests.tasks.add", "schedule": 60, "args": [1, 2]}}


def _panel(html: str, alias: str) -> str:
    match = re.search(rf'<section[^>]*id="backend-{alias}">(.*?)</section>', html, re.S)
    assert match, f"no panel for {alias}"
    return match.group(1)


def _queue_row(panel: str, queue: str) -> list[str]:
    match = re.search(rf'<tr class="vtasks-queue" data-queue="{queue}">(.*?)</tr>', panel, re.S)
    assert match, f"no row for queue {queue}"
    return [re.sub(r"<[^>]+>|\s+", " ", cell).strip() for cell in match.group(1).split("</td>")]


def test_the_dashboard_shows_queues_processes_and_throughput(alias, staff):
    """Throughput on every backend: ``finished_at`` on the database ones, the per-minute finish
    counters on Valkey."""
    for _ in range(3):
        tasks.add.using(backend=alias, queue_name="done").enqueue(1, 1)
    work(alias, queues=["done"])  # before make_states: its burst worker would recover "busy"
    make_states(alias)
    page = staff(*ALL).get(reverse(DASHBOARD))
    assert page.status_code == 200
    panel = _panel(page.content.decode(), alias)
    default = _queue_row(panel, "default")
    assert default[:6] == [
        "default",
        "1",
        "1",
        "0",
        "1",
        default[5],
    ]  # ready delayed running failed
    assert default[5].endswith(" s")  # the oldest ready task's age
    assert _queue_row(panel, "busy")[3] == "1" and _queue_row(panel, "lost")[3] == "1"
    assert "worker: 1 alive" in panel
    assert default[6:8] == [str(round(1 / 15, 2)), "1"]  # one failure in 15 minutes
    assert _queue_row(panel, "done")[6:8] == [str(round(3 / 15, 2)), "0"]
    assert "n/a" not in panel
    assert '<svg class="vtasks-chart"' in panel
    bars = re.findall(r"<title>\d\d:\d\d: (\d+) successful, (\d+) failed</title>", panel)
    assert len(bars) == 15  # one per minute of the window
    assert sum(int(ok) for ok, _ in bars) == 3 and sum(int(failed) for _, failed in bars) == 1


def test_pause_and_resume_a_queue_through_the_backend(alias, staff):
    make_states(alias)
    backend = task_backends[alias]
    client = staff(*ALL)
    url = reverse("admin:vtasks_queue_control", args=[alias])
    page = client.post(url, {"queue": "default", "op": "pause"}, follow=True)
    html = page.content.decode()
    if not hasattr(backend, "pause_queue"):
        # A backend without queue controls: the page says so and the POST changes nothing.
        assert "has no pause/resume" in _panel(html, alias)
        assert "cannot pause queue" in html
        return
    assert backend.queue_depths()["default"]["paused"] is True
    assert "PAUSED" in _queue_row(_panel(html, alias), "default")[8]
    page = client.post(url, {"queue": "default", "op": "resume"}, follow=True)
    assert backend.queue_depths()["default"]["paused"] is False
    assert 'value="pause"' in _panel(page.content.decode(), alias)


def test_the_process_page_lists_the_process_table(alias, staff):
    make_states(alias)
    html = staff(*ALL).get(reverse("admin:vtasks_processes", args=[alias])).content.decode()
    row = re.search(rf'<tr class="vtasks-process" data-id="{ALIVE}">(.*?)</tr>', html, re.S)
    assert row and "worker" in row.group(1) and "alive" in row.group(1)


@pytest.fixture
def no_slots(alias: str) -> Iterator[str]:
    """``alias`` without fired schedule slots (its storage fixture keeps the slot table)."""

    def clear() -> None:
        if not is_valkey(alias):
            from vtasks.models import ScheduleSlot

            ScheduleSlot.objects.using(alias).all().delete()

    clear()
    yield alias
    clear()


def test_the_schedule_page_shows_the_last_and_next_slot(no_slots, staff):
    alias = no_slots
    url = reverse("admin:vtasks_schedules", args=[alias])
    with override_settings(VTASKS_SCHEDULE=SCHEDULE):
        html = staff(*ALL).get(url).content.decode()
        assert "tick" in html and "every 60 s" in html and "never fired" in html
        [schedule] = schedules_from_settings()
        slot = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        task_backends[alias].fire_slot(schedule, slot)
        html = staff(*ALL).get(url).content.decode()
    row = re.search(r'<tr class="vtasks-schedule" data-name="tick">(.*?)</tr>', html, re.S)
    assert row and "Jan. 1, 2026, noon" in row.group(1)
    assert "never fired" not in row.group(1)
