"""The database backend's model pages: state filters, errors, actions, processes, schedule slots."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from tests import storage, tasks
from tests.admin.conftest import ALL
from tests.admin.states import ALIVE, GHOST, make_states
from tests.helpers import work

CHANGELIST = "admin:vtasks_taskrecord_changelist"


def _seq(alias: str, task_id: str) -> int:
    row = storage.record(alias, task_id)
    assert row is not None
    return row["seq"]


def _act(client, alias: str, action: str, *task_ids: str, **extra: str):
    data = {"action": action, "_selected_action": [_seq(alias, i) for i in task_ids], **extra}
    return client.post(reverse(CHANGELIST), data, follow=True)


@pytest.mark.parametrize(
    "state, shown",
    [
        ("pending", {"pending"}),
        ("scheduled", {"scheduled"}),
        ("running", {"running", "orphaned"}),
        ("orphaned", {"orphaned"}),
        ("failed", {"failed"}),
    ],
)
def test_state_filter_lists_the_tasks_in_that_state(admin_db, staff, state, shown):
    ids = make_states(admin_db)
    page = staff(*ALL).get(reverse(CHANGELIST), {"state": state})
    assert page.status_code == 200
    html = page.content.decode()
    assert {name for name, task_id in ids.items() if task_id in html} == shown


def test_running_tasks_show_their_process_and_its_heartbeat(admin_db, staff):
    ids = make_states(admin_db)
    html = staff(*ALL).get(reverse(CHANGELIST), {"state": "running"}).content.decode()
    assert ALIVE in html and GHOST in html
    assert "(alive)" in html and "no process (orphaned)" in html
    detail = staff(*ALL).get(
        reverse("admin:vtasks_taskrecord_change", args=[_seq(admin_db, ids["running"])])
    )
    assert ALIVE in detail.content.decode() and "(alive)" in detail.content.decode()


def test_a_failed_task_shows_its_error_and_traceback(admin_db, staff):
    ids = make_states(admin_db)
    url = reverse("admin:vtasks_taskrecord_change", args=[_seq(admin_db, ids["failed"])])
    html = staff(*ALL).get(url).content.decode()
    assert "builtins.ValueError" in html
    assert "Traceback" in html and "kaput" in html
    assert 'name="_save"' not in html  # rows are read-only


def test_retry_puts_failed_and_orphaned_tasks_back_but_not_running_ones(admin_db, staff):
    ids = make_states(admin_db)
    page = _act(staff(*ALL), admin_db, "retry", ids["failed"], ids["orphaned"], ids["running"])
    assert "2 task(s) put back to READY" in page.content.decode()
    failed, orphan = (
        storage.record(admin_db, ids["failed"]),
        storage.record(admin_db, ids["orphaned"]),
    )
    assert failed["status"] == "READY" and failed["finished_at"] is None
    assert "kaput" in failed["errors"]  # the history stays
    assert orphan["status"] == "READY" and orphan["claimed_by"] is None
    assert storage.status(admin_db, ids["running"]) == "RUNNING"
    work(admin_db, ["lost"])
    assert storage.status(admin_db, ids["orphaned"]) == "SUCCESSFUL"


def test_retry_takes_the_unique_key_again_or_leaves_the_task_failed(admin_db, staff):
    first = tasks.unique_sleep.using(backend=admin_db).enqueue("/dev/null", "a", 0)
    storage.update(admin_db, first.id, status="FAILED", finished_at=timezone.now())
    from vtasks.models import UniqueLock

    UniqueLock.objects.using(admin_db).all().delete()  # as the worker frees it on failing
    second = tasks.unique_sleep.using(backend=admin_db).enqueue("/dev/null", "a", 0)
    assert second is not None
    _act(staff(*ALL), admin_db, "retry", first.id)
    assert storage.status(admin_db, first.id) == "FAILED"  # the key is the second one's now
    storage.update(admin_db, second.id, status="SUCCESSFUL")
    UniqueLock.objects.using(admin_db).all().delete()
    _act(staff(*ALL), admin_db, "retry", first.id)
    assert storage.status(admin_db, first.id) == "READY"
    assert UniqueLock.objects.using(admin_db).get().task_id == first.id


def test_run_now_makes_a_scheduled_task_due_and_a_worker_runs_it(admin_db, staff):
    ids = make_states(admin_db)
    page = _act(staff(*ALL), admin_db, "run_now", ids["scheduled"], ids["failed"])
    assert "1 task(s) due now" in page.content.decode()
    assert storage.record(admin_db, ids["scheduled"])["available_at"] <= timezone.now()
    work(admin_db)
    assert storage.status(admin_db, ids["scheduled"]) == "SUCCESSFUL"


def test_delete_removes_tasks_and_frees_their_unique_locks(admin_db, staff):
    ids = make_states(admin_db)
    unique = tasks.unique_sleep.using(backend=admin_db).enqueue("/dev/null", "b", 0)
    assert storage.any_lock(admin_db)
    client = staff(*ALL)
    confirm = _act(client, admin_db, "delete_selected", ids["pending"], unique.id)
    assert "Are you sure" in confirm.content.decode()
    _act(client, admin_db, "delete_selected", ids["pending"], unique.id, post="yes")
    assert storage.record(admin_db, ids["pending"]) is None
    assert storage.record(admin_db, unique.id) is None
    assert not storage.any_lock(admin_db)
    assert storage.record(admin_db, ids["failed"]) is not None


def test_the_process_table_is_read_only(admin_db, staff):
    make_states(admin_db)
    client = staff(*ALL)
    html = client.get(reverse("admin:vtasks_processrecord_changelist")).content.decode()
    assert ALIVE in html
    assert client.get(reverse("admin:vtasks_processrecord_add")).status_code == 403
    change = client.get(reverse("admin:vtasks_processrecord_change", args=[ALIVE]))
    assert change.status_code == 200 and 'name="_save"' not in change.content.decode()


def test_schedule_slots_show_the_next_slot_of_a_configured_schedule(admin_db, staff):
    from vtasks.models import ScheduleSlot

    for name in ("tick", "gone"):
        ScheduleSlot.objects.using(admin_db).create(
            schedule=name, slot="2026-01-01T00:00:00.000000Z", task_id="x" * 32,
            fired_at=timezone.now(),
        )  # fmt: skip
    schedule = {"tick": {"task": "tests.tasks.add", "schedule": 60, "args": [1, 2]}}
    try:
        with override_settings(VTASKS_SCHEDULE=schedule):
            page = staff(*ALL).get(reverse("admin:vtasks_scheduleslot_changelist"))
        html = page.content.decode()
        assert page.status_code == 200 and "not in VTASKS_SCHEDULE" in html
        assert html.count("2026-01-01T00:00:00.000000Z") == 2
    finally:
        ScheduleSlot.objects.using(admin_db).all().delete()


def test_the_admin_index_names_the_models_in_plain_english(staff):
    page = staff(*ALL).get(reverse("admin:index")).content.decode()
    assert "Processes" in page and "Processs" not in page


def test_the_models_and_their_migrations_agree():
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("makemigrations", "vtasks", check=True, dry_run=True, stdout=out)
    assert "No changes detected" in out.getvalue()
