"""Batch queues in the worker: messages collected up to ``count`` or ``timeout``, each task called
once with the list of its messages, success and retry as a group, nothing lost to kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from django.tasks import TaskResultStatus

from tests import batch_tasks, storage, tasks
from tests.helpers import lines, spawn_worker, vtasks_command, wait_for, work
from vtasks.core.errors import ConfigError
from vtasks.runtime.batches import BatchQueue, parse_batch_queues

BATCH = {"batch": BatchQueue(count=10, timeout=0.2)}


def test_messages_run_in_batches_of_count_one_call_per_task(alias):
    collect = batch_tasks.collect.using(backend=alias)
    results = [collect.enqueue(i, key=f"k{i}") for i in range(25)]
    worker = work(alias, ["batch"], batch_queues=BATCH)
    assert worker.processed == 25
    calls: dict[str, list] = {}
    for result in results:
        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL
        assert result.attempts == 1
        value = result.return_value
        assert [result.id, result.args, result.kwargs] in value
        calls[json.dumps(value)] = value
    # FIFO claims: 10 + 10 + 5, each message in exactly one call.
    assert sorted(len(call) for call in calls.values()) == [5, 10, 10]
    seen = [message[1][0] for call in calls.values() for message in call]
    assert sorted(seen) == list(range(25))


def test_each_task_of_a_batch_queue_gets_its_own_call(alias):
    collect = batch_tasks.collect.using(backend=alias)
    acollect = batch_tasks.acollect.using(backend=alias)
    sync_results = [collect.enqueue(i) for i in range(3)]
    async_results = [acollect.enqueue(i) for i in range(4)]
    work(alias, ["batch"], batch_queues=BATCH)
    for result in sync_results:
        result.refresh()
        assert len(result.return_value) == 3
    for result in async_results:
        result.refresh()
        assert result.return_value == 4


def test_a_failed_batch_retries_as_one(alias, tmp_path):
    flaky = batch_tasks.flaky_collect.using(backend=alias)
    marker = str(tmp_path / "failed-once")
    results = [flaky.enqueue(marker) for _ in range(4)]
    work(alias, ["batch"], batch_queues=BATCH)
    for result in results:
        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL, result.errors
        assert result.return_value == 4
        assert result.attempts == 2
        assert [e.exception_class_path for e in result.errors] == ["builtins.ConnectionError"]


def test_plain_and_batch_queues_are_served_side_by_side(alias, tmp_path):
    out = tmp_path / "plain"
    single = tasks.record.using(backend=alias).enqueue(str(out), "one")
    batched = [batch_tasks.collect.using(backend=alias).enqueue(i) for i in range(3)]
    worker = work(alias, ["default", "batch"], batch_queues=BATCH)
    assert worker.processed == 4
    assert lines(out) == ["one"]
    single.refresh()
    assert single.status == TaskResultStatus.SUCCESSFUL
    for result in batched:
        result.refresh()
        assert len(result.return_value) == 3


def test_batch_settings_are_checked_with_the_entry_named():
    assert parse_batch_queues({"b": {"count": 5}, "c": None}) == {
        "b": BatchQueue(count=5, timeout=5.0), "c": BatchQueue(),
    }  # fmt: skip
    with pytest.raises(ConfigError, match=r"VTASKS_BATCH_QUEUES\['b'\]\.count: .*got 0"):
        parse_batch_queues({"b": {"count": 0}})
    with pytest.raises(ConfigError, match=r"\['b'\]: unknown key\(s\) \['size'\]"):
        parse_batch_queues({"b": {"size": 3}})
    with pytest.raises(ConfigError, match="timeout: must be seconds >= 0"):
        parse_batch_queues({"b": {"timeout": "soon"}})


def test_kill_9_mid_batch_loses_no_message(alias, tmp_path, monkeypatch):
    """The victim holds the whole batch under its lease when it dies; a second worker re-runs it
    once the victim's heartbeat is stale, and every message finishes exactly once after that."""
    monkeypatch.setenv(
        "VTASKS_TEST_BATCH_QUEUES", json.dumps({"slowbatch": {"count": 5, "timeout": 0.5}})
    )
    out = tmp_path / "calls"
    slow = batch_tasks.slow_collect.using(backend=alias, max_attempts=3)
    results = [slow.enqueue(str(out), 2.0) for _ in range(5)]
    victim = spawn_worker(alias, "--queue", "slowbatch", log=tmp_path / "victim.log")
    wait_for(
        lambda: all(storage.status(alias, r.id) == "RUNNING" for r in results),
        what="the victim to claim the whole batch",
    )
    time.sleep(0.5)  # well inside the 2 s call
    victim.kill()
    victim.wait(timeout=10)
    assert not out.exists()
    rescuer = spawn_worker(alias, "--queue", "slowbatch", log=tmp_path / "rescuer.log")
    try:
        wait_for(lambda: out.exists(), timeout=40, what="the rescued batch to run")
        wait_for(
            lambda: all(storage.status(alias, r.id) == "SUCCESSFUL" for r in results),
            what="every message acked",
        )
    finally:
        rescuer.send_signal(signal.SIGTERM)
        assert rescuer.wait(timeout=30) == 0
    # One call with the five messages (the victim's call never finished).
    (call,) = out.read_text().splitlines()
    assert sorted(call.split()) == sorted(r.id for r in results)
    for result in results:
        result.refresh()
        assert result.attempts == 2
        assert [e.exception_class_path for e in result.errors] == ["vtasks.core.errors.WorkerLost"]


def test_a_supervised_pool_takes_its_batch_queues_from_the_yaml(alias, tmp_path):
    """``workers[].batch`` in vtasks.yml makes the pool's children batch that queue."""
    config = tmp_path / "vtasks.yml"
    config.write_text(
        f"backend: {alias}\n"
        "workers:\n  - name: b\n    queues: [batch]\n    concurrency: 2\n"
        "    batch: {batch: {count: 4, timeout: 0.2}}\n"
    )
    results = [batch_tasks.collect.using(backend=alias).enqueue(i) for i in range(10)]
    done = subprocess.run(
        vtasks_command("supervise", "--config", str(config), "--burst"),
        capture_output=True, timeout=60, env=dict(os.environ),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    sizes = set()
    for result in results:
        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL
        sizes.add(len(result.return_value))
    assert sizes <= {4, 2} and 4 in sizes  # 4 + 4 + 2
