"""``plan()`` caches per task: the last task by identity, the others by equality."""

from __future__ import annotations

from django.tasks import task_backends

from tests import tasks


def test_each_task_gets_its_own_plan_whichever_came_last():
    backend = task_backends["default"]
    add, flaky = backend.plan(tasks.add), backend.plan(tasks.flaky)
    assert (add.task_path, add.max_attempts) == ("tests.tasks.add", 1)
    assert (flaky.task_path, flaky.max_attempts) == ("tests.tasks.flaky", 3)
    assert backend.plan(tasks.add) is add  # after another task: from the dict
    assert backend.plan(tasks.add) is add  # again: the identity shortcut
    assert backend.plan(tasks.flaky) is flaky


def test_an_equal_task_made_anew_shares_the_plan_and_one_entry_is_remembered():
    backend = task_backends["default"]
    first = backend.plan(tasks.add.using(priority=5))
    again = tasks.add.using(priority=5)  # a new object, equal to the first
    assert backend.plan(again) is first
    assert backend._last_plan == (again, first)  # only the latest object is held
