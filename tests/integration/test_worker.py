"""Running tasks: the worker side of Django's contract and vtasks' retries, timeouts and uniqueness."""

from __future__ import annotations

import asyncio
import collections
import time
from datetime import timedelta

import pytest
from django.tasks import TaskResultStatus, task_backends
from django.tasks.signals import task_finished, task_started
from django.utils import timezone

from tests import storage, tasks
from tests.helpers import lines, work
from vtasks.execution import Executor
from vtasks.runtime.identity import process_id
from vtasks.runtime.stranded import release_stranded
from vtasks.runtime.threads import ThreadRunner
from vtasks.runtime.worker import Worker, WorkerSettings


def test_sync_async_and_context_tasks_succeed_with_django_fields(alias):
    results = [
        tasks.add.using(backend=alias).enqueue(1, 2),
        tasks.async_add.using(backend=alias).enqueue(3, 4),
        tasks.with_context.using(backend=alias).enqueue("v"),
        tasks.echo.using(backend=alias).enqueue((1, 2), k=[3]),
    ]
    worker = work(alias)
    assert worker.processed == 4
    for result in results:
        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL, result.errors
        assert result.attempts == 1 and result.worker_ids == [worker.process_id]
        assert result.started_at <= result.last_attempted_at <= result.finished_at
    assert [r.return_value for r in results[:2]] == [3, 7]
    assert results[2].return_value == {"attempt": 1, "id": results[2].id, "value": "v"}
    assert results[3].return_value == {"args": [[1, 2]], "kwargs": {"k": [3]}}


def test_failures_record_the_exception_path_and_traceback(alias):
    failed = tasks.fail.using(backend=alias).enqueue("bad input")
    exited = tasks.exit_task.using(backend=alias).enqueue()
    nan = tasks.returns_nan.using(backend=alias).enqueue()
    obj = tasks.returns_object.using(backend=alias).enqueue()
    work(alias)
    for result, path, text in [
        (failed, "builtins.ValueError", "bad input"),
        (exited, "builtins.SystemExit", "SystemExit"),
        (nan, "vtasks.core.errors.ArgumentNotJSON", "return value: nan"),
        (obj, "vtasks.core.errors.ArgumentNotJSON", "Unsupported type"),
    ]:
        result.refresh()
        assert result.status == TaskResultStatus.FAILED
        assert result.finished_at is not None and result.attempts == 1
        assert [e.exception_class_path for e in result.errors] == [path]
        assert text in result.errors[0].traceback
        with pytest.raises(ValueError, match="Task failed"):
            result.return_value


def test_signals_are_sent_around_each_attempt(alias):
    seen = []

    def on_started(sender, task_result, **kwargs):
        seen.append(("started", task_result.id, task_result.status, task_result.attempts))

    def on_finished(sender, task_result, **kwargs):
        seen.append(("finished", task_result.id, task_result.status, task_result.attempts))

    task_started.connect(on_started)
    task_finished.connect(on_finished)
    try:
        ok = tasks.add.using(backend=alias).enqueue(1, 1)
        bad = tasks.fail.using(backend=alias).enqueue()
        aok = tasks.async_add.using(backend=alias).enqueue(1, 1)
        work(alias, concurrency=1)
    finally:
        task_started.disconnect(on_started)
        task_finished.disconnect(on_finished)
    assert ("started", ok.id, "RUNNING", 1) in seen and ("finished", ok.id, "SUCCESSFUL", 1) in seen
    assert ("finished", bad.id, "FAILED", 1) in seen
    assert ("started", aok.id, "RUNNING", 1) in seen and (
        "finished",
        aok.id,
        "SUCCESSFUL",
        1,
    ) in seen


def test_unknown_task_paths_fail_with_their_reason_and_the_worker_goes_on(alias):
    good = tasks.add.using(backend=alias).enqueue(1, 2)
    bad = [tasks.add.using(backend=alias).enqueue(0, 0) for _ in range(3)]
    paths = ["tests.tasks.does_not_exist", "no_such_module.fn", "tests.tasks.not_a_task"]
    for result, path in zip(bad, paths, strict=True):
        storage.update(alias, result.id, task_path=path)
    worker = work(alias)
    assert worker.processed == 4
    rows = {r["id"]: r for r in storage.records(alias)}
    assert rows[good.id]["status"] == "SUCCESSFUL"
    for result in bad:
        assert rows[result.id]["status"] == "FAILED"
        assert "vtasks.core.errors.UnknownTask" in rows[result.id]["errors"]


def test_priority_order_then_fifo(alias, tmp_path):
    out = tmp_path / "order"
    for i, priority in enumerate([0, 5, 0, -5, 5, 100, 0]):
        tasks.record.using(backend=alias, priority=priority).enqueue(str(out), f"{priority}:{i}")
    work(alias, concurrency=1)
    assert lines(out) == ["100:5", "5:1", "5:4", "0:0", "0:2", "0:6", "-5:3"]


def test_queue_order_across_listed_queues(alias, tmp_path):
    out = tmp_path / "order"
    tasks.record.using(backend=alias, queue_name="low", priority=100).enqueue(str(out), "low")
    tasks.record.using(backend=alias, queue_name="high").enqueue(str(out), "high")
    tasks.record.using(backend=alias, queue_name="other").enqueue(str(out), "other")
    work(alias, queues=["high", "low"], concurrency=1)
    assert lines(out) == ["high", "low"]
    assert [r["status"] for r in storage.records(alias) if r["queue_name"] == "other"] == ["READY"]


def test_a_delayed_task_waits_for_its_time(alias, tmp_path):
    out = tmp_path / "ran"
    result = tasks.record.using(backend=alias, run_after=timedelta(seconds=1.5)).enqueue(
        str(out), "late"
    )
    start = time.monotonic()
    work(alias)
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.started_at >= result.task.run_after
    assert time.monotonic() - start >= 1.0


def test_retries_then_success(alias, tmp_path):
    result = tasks.flaky.using(backend=alias).enqueue(str(tmp_path / "m"), 2)
    work(alias)
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 3
    assert result.attempts == 3 and len(result.errors) == 2
    assert {e.exception_class_path for e in result.errors} == {"builtins.ConnectionError"}


def test_retries_with_backoff_end_in_the_dead_letter_state(alias, tmp_path):
    marker = tmp_path / "m"
    result = tasks.picky.using(backend=alias).enqueue(str(marker), "conn")
    start = time.monotonic()
    work(alias)
    result.refresh()
    assert (
        result.status == TaskResultStatus.FAILED
        and result.attempts == 5
        and len(result.errors) == 5
    )
    assert marker.stat().st_size == 5
    # 0.2 + 0.4 + 0.8 + 1.6 seconds of back-off between the five attempts.
    assert time.monotonic() - start >= 2.8


def test_an_exception_off_the_allow_list_is_not_retried(alias, tmp_path):
    result = tasks.picky.using(backend=alias).enqueue(str(tmp_path / "m"), "value")
    work(alias)
    result.refresh()
    assert result.status == TaskResultStatus.FAILED and result.attempts == 1


def test_a_retry_waiting_for_its_time_shows_as_ready(alias, tmp_path):
    result = tasks.picky.using(backend=alias).enqueue(str(tmp_path / "m"), "conn")
    storage.update(alias, result.id, max_attempts=2)
    # Run one attempt by hand through the driver so the retry is pending when we look.
    import asyncio

    from vtasks.execution import Executor
    from vtasks.runtime.threads import ThreadRunner

    async def one_attempt():
        driver = task_backends[alias].create_driver()
        await driver.open()
        try:
            [claim] = await driver.claim(["default"], 1, "proc-1")
            outcome = await Executor(ThreadRunner(1)).run(claim)
            await driver.finish([outcome], "proc-1")
        finally:
            await driver.close()

    asyncio.run(one_attempt())
    result.refresh()
    assert (
        result.status == TaskResultStatus.READY and result.attempts == 1 and len(result.errors) == 1
    )
    row = storage.record(alias, result.id)
    assert row is not None and row["available_at"] > timezone.now() - timedelta(seconds=1)


def test_default_retry_options_come_from_the_backend(alias, tmp_path, settings_override):
    settings_override(alias, MAX_ATTEMPTS=2)
    result = tasks.fail.using(backend=alias).enqueue()
    work(alias)
    result.refresh()
    assert result.status == TaskResultStatus.FAILED and result.attempts == 2


def test_timeouts_fail_sync_and_async_attempts(alias):
    sync_result = tasks.slow_sync.using(backend=alias).enqueue(2.0)
    async_result = tasks.slow_async.using(backend=alias).enqueue(5.0)
    fast = tasks.slow_sync.using(backend=alias).enqueue(0.0)
    start = time.monotonic()
    worker = work(alias)
    assert time.monotonic() - start < 1.9
    for result in (sync_result, async_result):
        result.refresh()
        assert result.status == TaskResultStatus.FAILED
        assert [e.exception_class_path for e in result.errors] == ["vtasks.core.errors.TaskTimeout"]
    fast.refresh()
    assert fast.return_value == "done"
    assert worker.executor.abandoned_threads == 1


def test_unique_lock_is_released_when_the_task_finishes(alias, tmp_path):
    out = str(tmp_path / "out")
    assert tasks.unique_sleep.using(backend=alias).enqueue(out, "a", 0) is not None
    assert tasks.unique_sleep.using(backend=alias).enqueue(out, "a", 0) is None
    work(alias)
    assert not storage.any_lock(alias)
    assert tasks.unique_sleep.using(backend=alias).enqueue(out, "a", 0) is not None


def test_throttle_holds_the_key_for_its_ttl(alias, tmp_path):
    throttled = tasks.add.using(
        backend=alias, unique=True, ttl=1.0, remove_unique_on_complete=False
    )
    assert throttled.enqueue(1, 1) is not None
    work(alias)
    assert throttled.enqueue(1, 1) is None  # finished, but the throttle window is still open
    time.sleep(1.1)
    assert throttled.enqueue(1, 1) is not None


def test_result_ttl_zero_deletes_successful_rows_and_purge_removes_expired(alias):
    gone = tasks.add.using(backend=alias, result_ttl=0).enqueue(1, 1)
    kept = tasks.add.using(backend=alias, result_ttl=0.5).enqueue(2, 2)
    work(alias)
    assert storage.record(alias, gone.id) is None
    assert storage.record(alias, kept.id) is not None
    time.sleep(0.6)
    assert task_backends[alias].purge() == storage.purged(alias, 1)
    assert storage.count(alias) == 0


def test_a_record_whose_data_cannot_be_decoded_fails_with_the_reason(alias):
    good = tasks.add.using(backend=alias).enqueue(1, 2)
    bad = tasks.add.using(backend=alias).enqueue(1, 2)
    storage.update(alias, bad.id, args="{not json", kwargs="[]")
    worker = work(alias)
    assert worker.processed == 2
    rows = {r["id"]: r for r in storage.records(alias)}
    assert rows[good.id]["status"] == "SUCCESSFUL"
    assert rows[bad.id]["status"] == "FAILED"
    errors = rows[bad.id]["errors"]
    assert "EnvelopeError" in errors and "args:" in errors and "kwargs:" in errors


async def test_aenqueue_many(alias):
    results = await task_backends[alias].aenqueue_many(
        [(tasks.add.using(backend=alias), (i, 1), {}) for i in range(3)]
    )
    assert [r.args for r in results] == [[0, 1], [1, 1], [2, 1]]


def test_backoff_default_can_be_a_dotted_path(alias, tmp_path, settings_override):
    settings_override(alias, MAX_ATTEMPTS=3, BACKOFF="vtasks.core.retry.no_delay")
    result = tasks.flaky.using(backend=alias, max_attempts=None).enqueue(str(tmp_path / "m"), 5)
    work(alias)
    result.refresh()
    assert result.status == TaskResultStatus.FAILED and result.attempts == 3


def test_a_stopped_worker_hands_back_its_prefetched_claims(alias):
    """Short tasks fill the prefetch buffer; stopping mid-run runs or hands back every claim."""
    results = [tasks.slow_async.using(backend=alias).enqueue(0.01) for _ in range(200)]

    async def run_then_stop() -> Worker:
        driver = task_backends[alias].create_driver()
        threads = ThreadRunner(2)
        settings = WorkerSettings(
            queues=("default",), concurrency=2, heartbeat_interval=0.2, alive_threshold=1.5,
            shutdown_timeout=5, idle_wait=0.1, prefetch=100, prefetch_window=1.0,
        )  # fmt: skip
        await driver.open()
        worker = Worker(driver, Executor(threads), settings, process_id("prefetch"))
        try:
            running = asyncio.ensure_future(worker.run())
            await asyncio.sleep(0.3)
            worker.stop()
            await running
        finally:
            await driver.close()
            threads.shutdown(wait=False)
        return worker

    worker = asyncio.run(run_then_stop())
    statuses = collections.Counter(storage.status(alias, r.id) for r in results)
    assert statuses["RUNNING"] == 0, statuses
    assert statuses["SUCCESSFUL"] == worker.processed
    assert statuses["READY"] == len(results) - worker.processed
    assert 0 < worker.processed < len(results)


def test_a_claim_whose_reply_was_lost_is_handed_back_once_the_store_answers(alias):
    """The store claimed for the worker but the reply never arrived (a cut connection): nothing
    else would release those claims, since their process is alive. The worker finds them by
    asking the store what it holds, hands back what it does not know, and keeps what it runs."""
    lost = [tasks.noop.using(backend=alias).enqueue() for _ in range(3)]
    kept = tasks.noop.using(backend=alias).enqueue()

    async def scenario() -> list[str]:
        driver = task_backends[alias].create_driver()
        await driver.open()
        pid = process_id("stranded")
        worker = Worker(driver, Executor(ThreadRunner(1)), WorkerSettings(), pid)
        try:
            claimed = await driver.claim(["default"], 10, pid)  # the reply that "got lost"
            assert {c.id for c in claimed} == {r.id for r in [*lost, kept]}
            mine = next(c for c in claimed if c.id == kept.id)
            worker._buffer.append(mine)  # one of them the worker does know
            worker._claims_unsure.add("default")
            await release_stranded(worker)
            assert not worker._claims_unsure
            return [ref.id for ref in await driver.held_by(pid, ["default"])]
        finally:
            await driver.close()

    still_held = asyncio.run(scenario())
    assert still_held == [kept.id]
    assert [storage.status(alias, r.id) for r in lost] == ["READY"] * 3
    assert storage.status(alias, kept.id) == "RUNNING"
