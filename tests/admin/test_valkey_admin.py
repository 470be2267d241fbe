"""The Valkey adapter: the same task states, read from the backend, and the same actions through
its methods."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.urls import reverse
from django.utils import timezone

from tests import storage, tasks
from tests.admin.conftest import ALL
from tests.admin.states import ALIVE, GHOST, make_states
from tests.conftest import storage_for
from tests.helpers import work

VALKEY = "valkey"
STATES = {
    "pending": {"pending"}, "scheduled": {"scheduled"}, "running": {"running", "orphaned"},
    "orphaned": {"orphaned"}, "failed": {"failed"},
}  # fmt: skip


@pytest.fixture
def valkey() -> Iterator[str]:
    yield from storage_for(VALKEY)


def _url() -> str:
    return reverse("admin:vtasks_backend_tasks", args=[VALKEY])


def _act(client, state: str, action: str, *task_ids: str):
    return client.post(
        f"{_url()}?state={state}", {"action": action, "ids": list(task_ids)}, follow=True
    )


@pytest.mark.parametrize("state", list(STATES))
def test_each_state_lists_its_tasks(valkey, staff, state):
    ids = make_states(valkey)
    page = staff(*ALL).get(_url(), {"state": state})
    assert page.status_code == 200
    html = page.content.decode()
    assert {name for name, task_id in ids.items() if task_id in html} == STATES[state]
    if state == "running":
        assert ALIVE in html and GHOST in html and "(alive)" in html and "(dead)" in html
    if state == "failed":
        assert "builtins.ValueError" in html and "kaput" in html and "Traceback" in html


def test_a_queue_filter_narrows_the_list(valkey, staff):
    ids = make_states(valkey)
    html = staff(*ALL).get(_url(), {"state": "running", "queue": "busy"}).content.decode()
    assert ids["running"] in html and ids["orphaned"] not in html


def test_retry_puts_dead_letters_and_orphans_back_but_not_running_tasks(valkey, staff):
    ids = make_states(valkey)
    page = _act(staff(*ALL), "failed", "retry", ids["failed"], ids["orphaned"], ids["running"])
    assert "Retry: 2 of 3 task(s)" in page.content.decode()
    assert storage.status(valkey, ids["failed"]) == "READY"
    orphan = storage.record(valkey, ids["orphaned"])
    assert orphan["status"] == "READY" and orphan["claimed_by"] is None
    assert storage.status(valkey, ids["running"]) == "RUNNING"
    work(valkey, ["lost"])
    assert storage.status(valkey, ids["orphaned"]) == "SUCCESSFUL"
    assert ids["failed"] not in staff(*ALL).get(_url(), {"state": "failed"}).content.decode()


def test_run_now_makes_a_scheduled_task_due_and_a_worker_runs_it(valkey, staff):
    ids = make_states(valkey)
    page = _act(staff(*ALL), "scheduled", "run_now", ids["scheduled"], ids["pending"])
    assert "Run now: 1 of 2 task(s)" in page.content.decode()
    assert storage.record(valkey, ids["scheduled"])["available_at"] <= timezone.now()
    work(valkey)
    assert storage.status(valkey, ids["scheduled"]) == "SUCCESSFUL"


def test_delete_removes_waiting_and_failed_tasks_never_running_ones(valkey, staff):
    ids = make_states(valkey)
    unique = tasks.unique_sleep.using(backend=valkey).enqueue("/dev/null", "c", 0)
    assert storage.any_lock(valkey)
    doomed = [ids["pending"], ids["scheduled"], ids["failed"], ids["running"], unique.id]
    page = _act(staff(*ALL), "pending", "delete", *doomed)
    assert "Delete: 4 of 5 task(s)" in page.content.decode()
    for task_id in doomed[:3] + [unique.id]:
        assert storage.record(valkey, task_id) is None
    assert storage.status(valkey, ids["running"]) == "RUNNING"
    assert not storage.any_lock(valkey)
    depths = storage_depths()
    assert depths["default"]["ready"] == 0 and depths["default"]["failed"] == 0


def storage_depths() -> dict:
    from django.tasks import task_backends

    return task_backends[VALKEY].queue_depths()


def test_an_unknown_state_or_backend_is_404(valkey, staff):
    client = staff(*ALL)
    assert client.get(_url(), {"state": "nope"}).status_code == 404
    url = reverse("admin:vtasks_backend_tasks", args=["no-such-backend"])
    assert client.get(url).status_code == 404
