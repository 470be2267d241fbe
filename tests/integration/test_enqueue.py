"""The Django task API, enqueue side: every database alias and Valkey."""

from __future__ import annotations

import math
import threading
from datetime import timedelta

import pytest
from django.db import transaction
from django.tasks import TaskResultStatus, task_backends
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist, TaskResultMismatch
from django.tasks.signals import task_enqueued
from django.test import override_settings
from django.utils import timezone

import vtasks
from tests import storage, tasks


def test_enqueue_returns_a_ready_result_that_get_result_reads_back(alias):
    result = tasks.add.using(backend=alias, priority=7, queue_name="q1").enqueue(1, b=2)
    assert result.status == TaskResultStatus.READY
    assert result.backend == alias and len(result.id) < 64
    assert result.args == [1] and result.kwargs == {"b": 2}
    assert result.enqueued_at is not None and result.started_at is None and result.attempts == 0

    fetched = tasks.add.using(backend=alias).get_result(result.id)
    assert fetched.id == result.id and fetched.status == TaskResultStatus.READY
    assert fetched.task.priority == 7 and fetched.task.queue_name == "q1"
    assert fetched.task.func is tasks.add.func
    assert fetched.args == [1] and fetched.kwargs == {"b": 2}


async def test_aenqueue_and_aget_result(alias):
    result = await tasks.async_add.using(backend=alias).aenqueue(2, 3)
    fetched = await task_backends[alias].aget_result(result.id)
    assert fetched.id == result.id and fetched.status == TaskResultStatus.READY
    await result.arefresh()
    assert result.status == TaskResultStatus.READY


def test_unknown_or_malformed_id_does_not_exist(alias):
    backend = task_backends[alias]
    for bad in ("123", "0" * 32, "x" * 200):
        with pytest.raises(TaskResultDoesNotExist):
            backend.get_result(bad)


def test_get_result_of_another_task_mismatches(alias):
    result = tasks.add.using(backend=alias).enqueue(1, 2)
    with pytest.raises(TaskResultMismatch):
        tasks.echo.using(backend=alias).get_result(result.id)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda a: tasks.add.using(backend=a, priority=101).enqueue(1, 2),
            InvalidTask,
            "priority must be",
        ),
        (
            lambda a: tasks.add.using(backend=a, priority=-101).enqueue(1, 2),
            InvalidTask,
            "priority must be",
        ),
        (
            lambda a: tasks.echo.using(backend=a).enqueue(object()),
            TypeError,
            r"args\[0\]: Unsupported type",
        ),
        (
            lambda a: tasks.echo.using(backend=a).enqueue(x={"k": math.nan}),
            TypeError,
            r"kwargs\['x'\]\['k'\]",
        ),
        (
            lambda a: tasks.echo.using(backend=a).enqueue({1: "one"}),
            TypeError,
            "dict key 1 is not a string",
        ),
    ],
)
def test_invalid_calls_fail_at_enqueue_and_store_nothing(alias, call, error, message):
    with pytest.raises(error, match=message):
        call(alias)
    assert storage.count(alias) == 0


def test_queue_not_in_queues_is_refused_even_after_definition(alias):
    task = tasks.add.using(backend=alias, queue_name="reports")
    params = dict(task_backends[alias].__dict__)  # noqa: F841 - the instance is rebuilt below
    from django.conf import settings

    restricted = {**settings.TASKS, alias: {**settings.TASKS[alias], "QUEUES": ["default"]}}
    with override_settings(TASKS=restricted):
        with pytest.raises(InvalidTask, match="Queue 'reports' is not valid for backend"):
            task.enqueue(1, 2)
    assert storage.count(alias) == 0


def test_non_module_level_function_is_refused(alias):
    def local(x):
        return x

    with pytest.raises(InvalidTask, match="module level"):
        vtasks.task(local, backend=alias)


def test_run_after_takes_a_timedelta_and_aware_datetimes(alias):
    before = timezone.now()
    result = tasks.add.using(backend=alias, run_after=timedelta(minutes=5)).enqueue(1, 2)
    row = storage.record(alias, result.id)
    assert row is not None
    assert (
        before + timedelta(minutes=5)
        <= row["available_at"]
        <= timezone.now() + timedelta(minutes=5)
    )
    assert result.task.run_after == row["run_after"]


def test_vtasks_options_are_validated(alias):
    with pytest.raises(InvalidTask, match="max_attempts"):
        tasks.add.using(backend=alias, max_attempts=0)
    with pytest.raises(InvalidTask, match="timeout"):
        tasks.add.using(backend=alias, timeout=-1)
    with pytest.raises(InvalidTask, match="needs a ttl"):
        tasks.add.using(backend=alias, unique=True, remove_unique_on_complete=False)
    with pytest.raises(TypeError, match="unknown option"):
        tasks.add.using(backend=alias, retries=3)


def test_task_enqueued_signal_is_sent(alias):
    seen = []

    def receiver(sender, task_result, **kwargs):
        seen.append((sender, task_result.id, task_result.status))

    task_enqueued.connect(receiver)
    try:
        result = tasks.add.using(backend=alias).enqueue(1, 2)
    finally:
        task_enqueued.disconnect(receiver)
    assert seen == [(type(task_backends[alias]), result.id, TaskResultStatus.READY)]


def test_rolled_back_enqueue_leaves_no_task_and_no_lock(db_alias):
    from vtasks.models import TaskRecord, UniqueLock

    alias = db_alias
    with pytest.raises(RuntimeError):
        with transaction.atomic(using=alias):
            tasks.add.using(backend=alias).enqueue(1, 2)
            tasks.add.using(backend=alias, unique=True).enqueue(5, 5)
            raise RuntimeError("roll back")
    assert not TaskRecord.objects.using(alias).exists()
    assert not UniqueLock.objects.using(alias).exists()
    with transaction.atomic(using=alias):
        kept = tasks.add.using(backend=alias).enqueue(1, 2)
    assert TaskRecord.objects.using(alias).filter(id=kept.id).exists()


def test_enqueue_on_commit_waits_for_the_commit(alias):
    db = "default" if storage.is_valkey(alias) else alias  # Valkey waits for the default database
    with transaction.atomic(using=db):
        vtasks.enqueue_on_commit(tasks.add.using(backend=alias), 1, 2, using=db)
        assert storage.count(alias) == 0
    assert storage.count(alias) == 1


def test_unique_mutex_admits_one_queued_task_per_key(alias):
    task = tasks.add.using(backend=alias, unique=True)
    announced: list[str] = []

    def receiver(sender, task_result, **kwargs):
        announced.append(task_result.id)

    task_enqueued.connect(receiver)
    try:
        first = task.enqueue(1, 2)
        assert first is not None
        assert task.enqueue(1, 2) is None
    finally:
        task_enqueued.disconnect(receiver)
    assert announced == [first.id]  # a refused duplicate is not announced
    assert task.enqueue(2, 2) is not None  # other arguments, other key
    keyed = tasks.add.using(backend=alias, unique=True, unique_key="account:7")
    assert keyed.enqueue(1, 1) is not None and keyed.enqueue(9, 9) is None
    assert storage.count(alias) == 3


def test_enqueue_many_writes_in_bulk_and_returns_results(alias):
    backend = task_backends[alias]
    calls = [(tasks.add.using(backend=alias, priority=i % 3), (i, i), {}) for i in range(50)]
    results = backend.enqueue_many(calls)
    assert [r.args for r in results] == [[i, i] for i in range(50)]
    assert storage.count(alias) == 50
    assert backend.get_result(results[10].id).task.priority == 1


def test_enqueue_many_answers_none_for_unique_duplicates_and_announces_the_rest(alias):
    backend = task_backends[alias]
    unique = tasks.add.using(backend=alias, unique=True)
    plain = tasks.add.using(backend=alias)
    announced: list[str] = []

    def receiver(sender, task_result, **kwargs):
        announced.append(task_result.id)

    task_enqueued.connect(receiver)
    try:
        results = backend.enqueue_many(
            [(unique, (1, 1), {}), (plain, (2, 2), {}), (unique, (1, 1), {}), (unique, (3, 3), {})]
        )
    finally:
        task_enqueued.disconnect(receiver)
    assert [r is None for r in results] == [False, False, True, False]
    assert [r.args for r in results if r] == [[1, 1], [2, 2], [3, 3]]
    assert announced == [r.id for r in results if r]
    assert storage.count(alias) == 3


def test_enqueue_many_validates_everything_before_writing(alias):
    backend = task_backends[alias]
    with pytest.raises(TypeError, match=r"args\[0\]"):
        backend.enqueue_many(
            [
                (tasks.add.using(backend=alias), (1, 2), {}),
                (tasks.echo.using(backend=alias), (object(),), {}),
            ]
        )
    assert storage.count(alias) == 0


def test_ready_result_matches_djangos_constructor(alias):
    from django.tasks import TaskResult

    from vtasks.backends.results import ready_result

    now = timezone.now()
    fast = ready_result(tasks.add, "a" * 32, now, [1, 2], {"k": "v"}, alias)
    slow = TaskResult(
        task=tasks.add, id="a" * 32, status=TaskResultStatus.READY, enqueued_at=now, started_at=None,
        finished_at=None, last_attempted_at=None, args=[1, 2], kwargs={"k": "v"}, backend=alias,
        errors=[], worker_ids=[],
    )  # fmt: skip
    assert fast == slow and fast.attempts == 0 and not fast.is_finished


def test_bulk_enqueue_rolls_back_with_the_transaction(db_alias):
    alias = db_alias
    backend = task_backends[alias]
    with pytest.raises(RuntimeError):
        with transaction.atomic(using=alias):
            backend.enqueue_many([(tasks.add.using(backend=alias), (1, 1), {})] * 10)
            raise RuntimeError("roll back")
    assert storage.count(alias) == 0


def test_bulk_enqueue_keeps_call_order(alias, tmp_path):
    from tests.helpers import lines, work

    backend = task_backends[alias]
    out = str(tmp_path / "order")
    backend.enqueue_many(
        [(tasks.record.using(backend=alias), (out, str(i)), {}) for i in range(30)]
    )
    work(alias, concurrency=1)
    assert lines(tmp_path / "order") == [str(i) for i in range(30)]


def test_a_task_looks_its_backend_up_on_each_call(alias):
    """``Task.get_backend`` skips Django's import statement, not its look-up: a settings change
    (a new backend instance) is seen at once, in this thread and in another."""
    from django.conf import settings

    task = tasks.add.using(backend=alias)
    assert task.get_backend() is task_backends[alias]
    before = task.get_backend()
    with override_settings(TASKS={**settings.TASKS}):
        assert task.get_backend() is task_backends[alias] is not before
    found: list[object] = []
    thread = threading.Thread(target=lambda: found.append(task.get_backend()))
    thread.start()
    thread.join()
    assert found[0] is not before and type(found[0]) is type(before)  # Django's: one per thread
