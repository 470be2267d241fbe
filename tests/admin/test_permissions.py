"""Only staff with the model permissions see or act: viewing needs ``view_*``, retry/run now/pause
``change_taskrecord``, delete ``delete_taskrecord``."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests import storage
from tests.admin.states import make_states
from tests.admin.test_valkey_admin import _act as valkey_act
from tests.admin.test_valkey_admin import valkey  # noqa: F401 - a fixture

PAGES = [
    ("admin:vtasks_dashboard", ()),
    ("admin:vtasks_taskrecord_changelist", ()),
    ("admin:vtasks_processrecord_changelist", ()),
    ("admin:vtasks_scheduleslot_changelist", ()),
    ("admin:vtasks_processes", ("default",)),
    ("admin:vtasks_schedules", ("default",)),
    ("admin:vtasks_backend_tasks", ("valkey",)),
]


@pytest.mark.parametrize("name, args", PAGES)
def test_anonymous_users_are_sent_to_the_login_page(name, args):
    page = Client().get(reverse(name, args=args))
    assert page.status_code == 302 and "/admin/login/" in page["Location"]


@pytest.mark.parametrize("name, args", PAGES)
def test_staff_without_permissions_are_refused(staff, name, args):
    assert staff().get(reverse(name, args=args)).status_code == 403


def test_each_page_needs_its_own_model_view_permission(staff):
    client = staff("view_taskrecord")
    assert client.get(reverse("admin:vtasks_dashboard")).status_code == 200
    assert client.get(reverse("admin:vtasks_processes", args=["default"])).status_code == 403
    assert client.get(reverse("admin:vtasks_schedules", args=["default"])).status_code == 403
    client = staff("view_processrecord", "view_scheduleslot")
    assert client.get(reverse("admin:vtasks_processes", args=["default"])).status_code == 200
    assert client.get(reverse("admin:vtasks_schedules", args=["default"])).status_code == 200
    assert client.get(reverse("admin:vtasks_dashboard")).status_code == 403


def test_viewers_cannot_act_on_database_tasks(admin_db, staff):
    ids = make_states(admin_db)
    client = staff("view_taskrecord")
    page = client.get(reverse("admin:vtasks_taskrecord_changelist"))
    assert page.status_code == 200 and 'value="retry"' not in page.content.decode()
    seqs = [storage.record(admin_db, ids[s])["seq"] for s in ("failed", "scheduled", "pending")]
    for action in ("retry", "run_now", "delete_selected"):
        data = {"action": action, "_selected_action": seqs, "post": "yes"}
        client.post(reverse("admin:vtasks_taskrecord_changelist"), data)
    assert storage.status(admin_db, ids["failed"]) == "FAILED"
    assert storage.record(admin_db, ids["scheduled"])["available_at"] > timezone.now()
    assert storage.record(admin_db, ids["pending"]) is not None


def test_changers_can_retry_but_not_delete_without_the_delete_permission(admin_db, staff):
    make_states(admin_db)  # the actions menu shows over rows
    client = staff("view_taskrecord", "change_taskrecord")
    page = client.get(reverse("admin:vtasks_taskrecord_changelist")).content.decode()
    assert 'value="retry"' in page and 'value="delete_selected"' not in page


def test_viewers_cannot_pause_a_queue(staff):
    url = reverse("admin:vtasks_queue_control", args=["default"])
    assert staff("view_taskrecord").post(url, {"queue": "q", "op": "pause"}).status_code == 403
    html = staff("view_taskrecord").get(reverse("admin:vtasks_dashboard")).content.decode()
    assert 'name="op"' not in html


def test_valkey_actions_need_change_or_delete(valkey, staff):  # noqa: F811
    ids = make_states(valkey)
    viewer = staff("view_taskrecord")
    assert valkey_act(viewer, "failed", "retry", ids["failed"]).status_code == 403
    assert valkey_act(viewer, "scheduled", "run_now", ids["scheduled"]).status_code == 403
    changer = staff("view_taskrecord", "change_taskrecord")
    assert valkey_act(changer, "pending", "delete", ids["pending"]).status_code == 403
    html = changer.get(reverse("admin:vtasks_backend_tasks", args=["valkey"]),
                       {"state": "failed"}).content.decode()  # fmt: skip
    assert 'value="retry"' in html and 'value="delete"' not in html
    assert storage.status(valkey, ids["failed"]) == "FAILED"
    assert storage.record(valkey, ids["pending"]) is not None
