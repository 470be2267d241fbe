"""``make_result`` writes a ``TaskResult``'s slots directly; it must equal Django's constructor."""

from __future__ import annotations

import dataclasses

import pytest
from django.tasks import TaskResult, TaskResultStatus
from django.tasks.base import TaskError
from django.utils import timezone

from tests import tasks
from vtasks.backends import results


def test_the_fast_path_is_taken_on_this_django():
    assert results._FAST_RESULTS


def test_make_result_equals_the_constructors_result():
    now = timezone.now()
    fields = dict(
        task=tasks.add, id="abc", status=TaskResultStatus.FAILED, enqueued_at=now,
        started_at=now, finished_at=now, last_attempted_at=now, args=[1, {"a": [2]}],
        kwargs={"k": "v"}, backend="default", worker_ids=["w1"],
        errors=[TaskError(exception_class_path="builtins.ValueError", traceback="tb")],
    )  # fmt: skip
    made, built = results.make_result(**fields), TaskResult(**fields)
    for field in dataclasses.fields(TaskResult):
        assert getattr(made, field.name) == getattr(built, field.name), field.name
    assert made == built


def test_a_ready_result_is_frozen_and_has_no_return_value():
    result = results.ready_result(tasks.add, "id1", timezone.now(), [1, 2], {}, "default")
    assert result.status == TaskResultStatus.READY and result.args == [1, 2]
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.id = "other"  # type: ignore[misc]
