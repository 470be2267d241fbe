"""``ImmediateBackend``: tasks run in the caller with vtasks' retries, signals and batch queues."""

from __future__ import annotations

import logging
import sys
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.tasks import TaskResultStatus, task_backends
from django.tasks.exceptions import TaskResultDoesNotExist
from django.tasks.signals import task_enqueued, task_finished, task_started
from django.test import override_settings

from tests import batch_tasks, tasks
from vtasks.backends.immediate import ImmediateBackend
from vtasks.core.errors import ArgumentNotJSON, TaskTimeout

ALIAS = "immediate"


@pytest.fixture
def backend():
    immediate = {"BACKEND": "vtasks.backends.immediate.ImmediateBackend", "QUEUES": []}
    with override_settings(
        TASKS={**settings.TASKS, ALIAS: immediate},
        VTASKS_BATCH_QUEUES={"batch": {"count": 3, "timeout": 5}, "open": {}},
    ):
        yield task_backends[ALIAS]


def test_sync_async_and_context_tasks_finish_before_enqueue_returns(backend):
    assert isinstance(backend, ImmediateBackend)
    results = [
        tasks.add.using(backend=ALIAS).enqueue(1, 2),
        tasks.async_add.using(backend=ALIAS).enqueue(3, 4),
        tasks.with_context.using(backend=ALIAS).enqueue("v"),
        tasks.echo.using(backend=ALIAS).enqueue((1, 2), k=[3]),
    ]
    for result in results:
        assert result.status == TaskResultStatus.SUCCESSFUL, result.errors
        assert result.attempts == 1 and result.worker_ids == [backend.worker_id]
        assert result.enqueued_at <= result.started_at <= result.finished_at
    assert [r.return_value for r in results[:2]] == [3, 7]
    assert results[2].return_value == {"attempt": 1, "id": results[2].id, "value": "v"}
    assert results[3].return_value == {"args": [[1, 2]], "kwargs": {"k": [3]}}


def test_get_result_and_refresh_work_for_results_it_produced(backend):
    result = tasks.add.using(backend=ALIAS).enqueue(2, 2)
    fetched = tasks.add.using(backend=ALIAS).get_result(result.id)
    assert fetched == result and fetched is not result
    result.refresh()
    assert result.return_value == 4
    with pytest.raises(TaskResultDoesNotExist):
        backend.get_result("123")


def test_failures_record_errors_and_keyboard_interrupt_propagates(backend):
    failed = tasks.fail.using(backend=ALIAS).enqueue("bad input")
    exited = tasks.exit_task.using(backend=ALIAS).enqueue()
    nan = tasks.returns_nan.using(backend=ALIAS).enqueue()
    for result, path, text in [
        (failed, "builtins.ValueError", "bad input"),
        (exited, "builtins.SystemExit", "SystemExit"),
        (nan, "vtasks.core.errors.ArgumentNotJSON", "return value: nan"),
    ]:
        assert result.status == TaskResultStatus.FAILED and result.finished_at is not None
        assert [e.exception_class_path for e in result.errors] == [path]
        assert text in result.errors[0].traceback
        with pytest.raises(ValueError, match="Task failed"):
            result.return_value
    with pytest.raises(KeyboardInterrupt):
        tasks.interrupt.using(backend=ALIAS).enqueue()


def test_retries_run_at_once_with_one_error_per_attempt(backend, tmp_path):
    flaky = tasks.flaky.using(backend=ALIAS).enqueue(str(tmp_path / "f"), 2)
    assert flaky.status == TaskResultStatus.SUCCESSFUL and flaky.return_value == 3
    assert flaky.attempts == 3 and len(flaky.errors) == 2
    assert flaky.worker_ids == [backend.worker_id] * 3
    start = time.monotonic()
    conn = tasks.picky.using(backend=ALIAS).enqueue(str(tmp_path / "c"), "conn")
    assert time.monotonic() - start < 1.0  # the backoff's 3 s of delays are not slept
    assert conn.status == TaskResultStatus.FAILED and conn.attempts == 5
    value = tasks.picky.using(backend=ALIAS).enqueue(str(tmp_path / "v"), "value")
    assert value.attempts == 1  # not in retry_on
    assert [e.exception_class_path for e in value.errors] == ["builtins.ValueError"]


def test_signals_in_djangos_order_with_the_traceback_at_finish(backend):
    seen = []

    def receiver(signal_name):
        def on_signal(sender, task_result, **kwargs):
            seen.append((signal_name, task_result.status, sys.exc_info()[0]))

        return on_signal

    receivers = {
        task_enqueued: receiver("enqueued"),
        task_started: receiver("started"),
        task_finished: receiver("finished"),
    }
    for signal, fn in receivers.items():
        signal.connect(fn)
    try:
        tasks.fail.using(backend=ALIAS).enqueue()
        tasks.async_add.using(backend=ALIAS).enqueue(1, 1)
    finally:
        for signal, fn in receivers.items():
            signal.disconnect(fn)
    assert seen == [
        ("enqueued", "READY", None),
        ("started", "RUNNING", None),
        ("finished", "FAILED", ValueError),
        ("enqueued", "READY", None),
        ("started", "RUNNING", None),
        ("finished", "SUCCESSFUL", None),
    ]


def test_djangos_three_log_records(backend, caplog):
    caplog.set_level(logging.DEBUG, logger="django.tasks")
    tasks.add.using(backend=ALIAS).enqueue(1, 1)
    messages = [r.getMessage() for r in caplog.records if r.name == "django.tasks"]
    assert len(messages) == 3
    assert "enqueued" in messages[0] and "state=RUNNING" in messages[1]
    assert "state=SUCCESSFUL" in messages[2]


def test_arguments_are_checked_and_every_option_is_accepted(backend, tmp_path):
    with pytest.raises(ArgumentNotJSON, match="args\\[0\\]"):
        tasks.echo.using(backend=ALIAS).enqueue(float("nan"))
    with pytest.raises(TypeError, match="Unsupported type"):
        tasks.echo.using(backend=ALIAS).enqueue(object())
    out = tmp_path / "out"
    unique = tasks.unique_sleep.using(backend=ALIAS, ttl=60)
    assert [unique.enqueue(str(out), "u", 0).status for _ in range(2)] == ["SUCCESSFUL"] * 2
    later = tasks.add.using(backend=ALIAS, run_after=timedelta(hours=1), priority=7)
    assert later.enqueue(1, 1).return_value == 2  # run_after is ignored: it runs now
    assert len(backend.enqueue_many([(tasks.add.using(backend=ALIAS), (1, 2), {})] * 2)) == 2


def test_async_timeout_fails_the_attempt(backend):
    result = tasks.slow_async.using(backend=ALIAS).enqueue(5)
    assert result.status == TaskResultStatus.FAILED
    assert [e.exception_class_path for e in result.errors] == ["vtasks.core.errors.TaskTimeout"]


async def test_aenqueue_awaits_async_tasks_and_runs_sync_ones(backend):
    async_result = await tasks.async_add.using(backend=ALIAS).aenqueue(2, 3)
    sync_result = await tasks.with_context.using(backend=ALIAS).aenqueue("x")
    assert async_result.return_value == 5
    assert sync_result.return_value["attempt"] == 1
    fetched = await tasks.async_add.using(backend=ALIAS).aget_result(async_result.id)
    assert fetched.status == TaskResultStatus.SUCCESSFUL


def test_batch_queue_holds_messages_until_flushed(backend):
    collect = batch_tasks.collect.using(backend=ALIAS)
    first, second = collect.enqueue(1), collect.enqueue(k="v")
    assert first.status == second.status == TaskResultStatus.READY
    assert backend.pending_batches["batch"] == [first, second]
    flushed = backend.flush_batch("batch")
    assert flushed == [first, second] and not backend.pending_batches.get("batch")
    expected = [[first.id, [1], {}], [second.id, [], {"k": "v"}]]
    for result in (first, second):
        assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == expected
    assert backend.get_result(first.id).return_value == expected


def test_a_full_batch_runs_by_itself_once_per_task_path(backend):
    results = [batch_tasks.acollect.using(backend=ALIAS).enqueue(i) for i in range(2)]
    other = batch_tasks.collect.using(backend=ALIAS).enqueue("other")
    assert {r.status for r in results + [other]} == {TaskResultStatus.SUCCESSFUL}
    assert [r.return_value for r in results] == [2, 2]  # one call with both messages
    assert len(other.return_value) == 1


def test_batch_retries_and_flush_batches(backend, tmp_path):
    flaky = batch_tasks.flaky_collect.using(backend=ALIAS, queue_name="open")
    results = [flaky.enqueue(str(tmp_path / "m"), i) for i in range(5)]  # "open": no count
    assert backend.flush_batches() == results
    for result in results:
        assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 5
        assert result.attempts == 2
        assert [e.exception_class_path for e in result.errors] == ["builtins.ConnectionError"]


async def test_aenqueue_on_a_batch_queue(backend):
    collect = batch_tasks.acollect.using(backend=ALIAS)
    results = [await collect.aenqueue(i) for i in range(3)]
    assert [r.return_value for r in results] == [3, 3, 3]


def test_failures_are_logged_with_their_traceback_sync_and_async(backend, caplog):
    tasks.fail.using(backend=ALIAS).enqueue("logged")
    tasks.slow_async.using(backend=ALIAS).enqueue(5)
    failed = [r for r in caplog.records if r.name == "django.tasks" and "FAILED" in r.getMessage()]
    assert [type(r.exc_info[1]) for r in failed] == [ValueError, TaskTimeout]
    assert all(r.levelno == logging.ERROR for r in failed)
