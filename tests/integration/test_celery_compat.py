"""The Celery-style API: declared tasks, delay/apply_async/signatures, results, revoke, eager mode."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.tasks import task_backends
from django.test import override_settings
from django.utils import timezone
from django.utils.module_loading import import_string

from tests import celery_tasks, storage
from tests.conftest import storage_for
from tests.helpers import lines, work
from vtasks.compat.celery import AsyncResult, CeleryTask, EagerResult, celery_priority, shared_task
from vtasks.core.errors import Revoked
from vtasks.declare import Task

REVOKED_PATH = f"{Revoked.__module__}.{Revoked.__qualname__}"


def test_decorated_functions_are_declared_vtasks_tasks():
    assert isinstance(celery_tasks.add, CeleryTask) and isinstance(celery_tasks.add, Task)
    assert import_string("tests.celery_tasks.add") is celery_tasks.add
    assert celery_tasks.add(2, 3) == 5  # calling runs the function
    assert celery_tasks.async_add(2, 3) == 5
    assert celery_tasks.record.queue_name == "celery" and celery_tasks.record.priority == 100
    assert celery_tasks.flaky.max_attempts == 3
    assert celery_tasks.add.s(1).task is celery_tasks.add


def test_options_are_checked():
    with pytest.raises(TypeError, match="bind=True\\) is not supported"):
        shared_task(bind=True)
    with pytest.raises(TypeError, match="unsupported option"):
        shared_task(rate_limit="1/s")
    with pytest.raises(TypeError, match="retry_kwargs takes"):
        shared_task(autoretry_for=(ValueError,), retry_kwargs={"foo": 1})
    with pytest.raises(TypeError, match="max_retries"):
        shared_task(autoretry_for=(ValueError,), max_retries=None)


def test_priority_mapping():
    assert [celery_priority(p) for p in range(10)] == [
        -100, -78, -56, -33, -11, 11, 33, 56, 78, 100,
    ]  # fmt: skip
    with override_settings(VTASKS_CELERY_REDIS_PRIORITIES=True):
        assert celery_priority(0) == 100 and celery_priority(9) == -100
    for bad in (-1, 10, 2.5, True):
        with pytest.raises(ValueError):
            celery_priority(bad)


def test_delay_apply_async_and_signatures_run_on_a_worker(db_alias):
    add = celery_tasks.add.using(backend=db_alias)
    results = [
        add.delay(1, 2),
        add.apply_async((3,), {"b": 4}),
        add.s(5).delay(6),
        add.s(7, b=8).apply_async(),
    ]
    assert all(isinstance(r, AsyncResult) for r in results)
    assert [r.state for r in results] == ["PENDING"] * 4
    work(db_alias)
    assert [r.get(timeout=5) for r in results] == [3, 7, 11, 15]
    assert [r.status for r in results] == ["SUCCESS"] * 4
    assert results[0].ready() and results[0].successful() and results[0].result == 3


def test_apply_async_options_reach_the_stored_task(db_alias):
    add = celery_tasks.add.using(backend=db_alias)
    result = add.apply_async((1, 1), queue="other", priority=0, countdown=3600)
    row = storage.record(db_alias, result.id)
    assert row["queue_name"] == "other" and row["priority"] == -100
    assert row["available_at"] > timezone.now() + timedelta(minutes=59)
    eta = timezone.now() + timedelta(hours=2)
    later = storage.record(db_alias, add.apply_async((1, 1), eta=eta).id)
    assert abs((later["available_at"] - eta).total_seconds()) < 1
    with pytest.raises(TypeError, match="countdown or eta"):
        add.apply_async((1, 1), countdown=1, eta=eta)


def test_priorities_order_the_queue(db_alias, tmp_path):
    out = tmp_path / "order"
    record = celery_tasks.record.using(backend=db_alias)
    for token, priority in [("low", 0), ("mid", 5), ("high", 9)]:
        record.apply_async((str(out), token), priority=priority)
    work(db_alias, queues=["celery"], concurrency=1)
    assert lines(out) == ["high", "mid", "low"]


def test_autoretry_and_failures(db_alias, tmp_path):
    flaky = celery_tasks.flaky.using(backend=db_alias)
    ok = flaky.delay(str(tmp_path / "a"), 2)
    exhausted = flaky.delay(str(tmp_path / "b"), 5)
    failed = celery_tasks.fail.using(backend=db_alias).delay("bad input")
    work(db_alias)
    assert ok.get(timeout=5) == 3
    assert exhausted.state == "FAILURE"
    assert isinstance(exhausted.result, ConnectionError)
    assert task_backends[db_alias].get_result(exhausted.id).attempts == 3
    with pytest.raises(ValueError, match="bad input"):
        failed.get(timeout=5)
    assert isinstance(failed.get(propagate=False), ValueError) and failed.failed()


def test_get_times_out_while_waiting(db_alias):
    result = celery_tasks.add.using(backend=db_alias).delay(1, 1)
    with pytest.raises(TimeoutError):
        result.get(timeout=0.2, interval=0.05)


def test_a_revoked_task_never_runs(alias, tmp_path):
    out = tmp_path / "ran"
    record = celery_tasks.record.using(backend=alias)
    revoked, kept = record.delay(str(out), "revoked"), record.delay(str(out), "kept")
    later = record.apply_async((str(out), "later"), countdown=3600)  # waits in the delayed set
    assert revoked.revoke() is True and later.revoke() is True
    assert revoked.state == "REVOKED" and isinstance(revoked.result, Revoked)
    assert later.state == "REVOKED"
    assert task_backends[alias].get_result(revoked.id).status == "FAILED"
    work(alias, queues=["celery"])
    assert lines(out) == ["kept"]
    assert revoked.state == "REVOKED" and kept.state == "SUCCESS"
    assert revoked.revoke() is False  # finished: nothing to revoke


def test_revoke_leaves_a_running_task_alone(alias):
    result = celery_tasks.add.using(backend=alias).delay(1, 1)
    storage.update(alias, result.id, status="RUNNING", claimed_by="someone", attempts=1)
    assert result.revoke() is False
    assert storage.status(alias, result.id) == "RUNNING" and result.state == "STARTED"


def test_revoke_releases_a_unique_lock(alias):
    add = celery_tasks.add.using(backend=alias, unique=True)
    first = add.delay(1, 1)
    assert add.delay(1, 1) is None  # a duplicate while the first waits
    assert first.revoke()
    assert isinstance(add.delay(1, 1), AsyncResult)


@pytest.fixture
def valkey_alias():
    yield from storage_for("valkey")


def test_eager_mode_runs_at_once(tmp_path):
    stored = storage.count("default")
    with override_settings(CELERY_TASK_ALWAYS_EAGER=True):
        result = celery_tasks.add.apply_async((1, 2), countdown=60)
        assert isinstance(result, EagerResult)
        assert result.get() == 3 and result.state == "SUCCESS"
        assert celery_tasks.flaky.delay(str(tmp_path / "m"), 2).get() == 3  # retried at once
        failed = celery_tasks.fail.delay("eager")
        assert failed.state == "FAILURE" and isinstance(failed.result, ValueError)
        with pytest.raises(ValueError, match="eager"):
            failed.get()
        assert celery_tasks.async_add.s(2).delay(2).get() == 4
    with override_settings(CELERY_TASK_ALWAYS_EAGER=True, CELERY_TASK_EAGER_PROPAGATES=True):
        with pytest.raises(ValueError, match="propagated"):
            celery_tasks.fail.delay("propagated")
    assert storage.count("default") == stored  # nothing was stored


def test_revoke_on_a_backend_without_it_says_so():
    dummy = {"BACKEND": "django.tasks.backends.dummy.DummyBackend", "QUEUES": []}
    with override_settings(TASKS={**settings.TASKS, "dummy": dummy}):
        with pytest.raises(NotImplementedError, match="DummyBackend"):
            AsyncResult("some-id", backend="dummy").revoke()


def test_a_revoked_valkey_task_is_a_capped_retryable_dead_letter(valkey_alias, monkeypatch):
    """On Valkey, revoke is one script: out of the ready set, FAILED with one more error, into
    the dead letters (capped by VTASKS_DLQ_CAP), and retryable like any failed task."""
    monkeypatch.setenv("VTASKS_DLQ_CAP", "2")
    backend = task_backends[valkey_alias]
    add = celery_tasks.add.using(backend=valkey_alias)
    first, second, third = add.delay(1, 1), add.delay(2, 2), add.delay(3, 3)
    earlier = '[{"exception_class_path": "builtins.OSError", "traceback": "OSError: once\\n"}]'
    storage.update(valkey_alias, third.id, errors=earlier)  # as after a failed attempt
    assert all(r.revoke() for r in (first, second, third))
    depths = backend.queue_depths(["default"])["default"]
    assert depths["ready"] == 0 and depths["failed"] == 2
    assert storage.record(valkey_alias, first.id) is None  # evicted by the cap, oldest first
    errors = backend.get_result(third.id).errors
    assert [e.exception_class_path for e in errors] == ["builtins.OSError", REVOKED_PATH]
    assert backend.retry_failed(third.id)  # a revoked task can be put back, as a failed one
    work(valkey_alias)
    assert third.get(timeout=5) == 6 and second.state == "REVOKED"
