"""django-vtasks' management commands on every vtasks backend: ``runworker`` with its flags,
``clear_queue`` and ``benchmark_vtasks``."""

from __future__ import annotations

import io
import json
import time

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.tasks import TaskResultStatus, task_backends
from django.test import override_settings

from tests import storage, tasks
from tests.helpers import wait_for, work
from vtasks.observability.health import judge


def _run(*args: str, **options: object) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


# -- runworker -----------------------------------------------------------------------------------
def test_runworker_serves_the_queues_it_is_given_with_its_id(alias, tmp_path):
    first = tasks.add.using(backend=alias, queue_name="first").enqueue(1, 2)
    second = tasks.add.using(backend=alias, queue_name="second").enqueue(3, 4)
    other = tasks.add.using(backend=alias, queue_name="other").enqueue(5, 6)
    probe = tmp_path / "health"
    call_command(
        "runworker", "--backend", alias, "--queue", "first", "--queue", "second", "--burst",
        "--concurrency", "3", "--id", "dropin-worker", "--health-check-file", str(probe),
    )  # fmt: skip
    for result in (first, second):
        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL
        assert result.worker_ids[0].startswith("dropin-worker:")
    other.refresh()
    assert other.status == TaskResultStatus.READY  # not a queue it was given
    health = json.loads(probe.read_text())
    assert health["children_running"] == 1 and time.time() - health["written_at"] < 30
    assert judge(probe, max_age=30) == []  # what `vtasks health --health-file` says


def test_runworker_falls_back_to_the_vtasks_settings(alias, monkeypatch):
    result = tasks.add.using(backend=alias, queue_name="from-settings").enqueue(2, 2)
    monkeypatch.setenv("VTASKS_WORKER_ID", "env-id")
    with override_settings(VTASKS_BACKEND=alias, VTASKS_QUEUES=["from-settings"]):
        call_command("runworker", "--burst")
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.worker_ids[0].startswith("env-id:")


def test_runworker_refuses_a_bad_concurrency():
    with pytest.raises(CommandError, match="--concurrency: must be >= 1, got 0"):
        call_command("runworker", "--burst", "--concurrency", "0")


class _FakeSchedulerThread:
    started: list[str] = []

    def __init__(self, backend_alias: str) -> None:
        self.backend_alias = backend_alias

    def __enter__(self) -> _FakeSchedulerThread:
        self.started.append(self.backend_alias)
        return self

    def __exit__(self, *exc: object) -> None:
        pass


def test_runworker_scheduler_flag_and_vtasks_run_scheduler(alias, monkeypatch):
    from vtasks import sidecar

    monkeypatch.setattr(sidecar, "SchedulerThread", _FakeSchedulerThread)
    _FakeSchedulerThread.started = []
    call_command("runworker", "--backend", alias, "--burst", "--scheduler")
    assert _FakeSchedulerThread.started == [alias]
    with override_settings(VTASKS_RUN_SCHEDULER=False):
        call_command("runworker", "--backend", alias, "--burst", "--scheduler")
    call_command("runworker", "--backend", alias, "--burst")
    assert _FakeSchedulerThread.started == [alias]


def test_the_scheduler_runs_beside_the_worker(alias):
    from vtasks.sidecar import SchedulerThread

    schedule = {"tick": {"task": "tests.tasks.add", "schedule": 0.2, "args": [1, 1]}}
    with override_settings(VTASKS_SCHEDULE=schedule), SchedulerThread(alias) as thread:
        wait_for(lambda: storage.count(alias) >= 1, timeout=20, what="a scheduled task")
    assert not thread.thread.is_alive()
    work(alias)
    assert storage.count(alias, status="SUCCESSFUL") >= 1


# -- clear_queue ---------------------------------------------------------------------------------
def _fill(alias: str) -> None:
    for queue, count in (("one", 3), ("two", 2)):
        for n in range(count):
            tasks.add.using(backend=alias, queue_name=queue).enqueue(n, n)
    tasks.fail.using(backend=alias, queue_name="one").enqueue()
    work(alias, ["one"])  # the fail task is FAILED now, the adds done
    for n in range(2):
        tasks.add.using(backend=alias, queue_name="one").enqueue(n, n)


def test_clear_queue_asks_first_and_deletes_waiting_tasks(alias):
    _fill(alias)
    before = storage.count(alias)
    out = _run("clear_queue", "--backend-alias", alias, "--queue", "one", stdin=io.StringIO("n\n"))
    assert "Delete the waiting tasks of one" in out and "nothing cleared" in out
    assert storage.count(alias) == before
    out = _run("clear_queue", "--backend-alias", alias, "--queue", "one", stdin=io.StringIO("y\n"))
    assert "cleared 2 task(s) from one" in out
    assert storage.count(alias, queue_name="one", status="READY") == 0
    assert storage.count(alias, queue_name="one", status="FAILED") == 1
    assert storage.count(alias, queue_name="two", status="READY") == 2


def test_clear_queue_all_queues_and_failed_with_force(alias):
    _fill(alias)
    out = _run("clear_queue", "--backend-alias", alias, "--all-queues", "--failed", "--force")
    assert "cleared 3 task(s) from one" in out and "cleared 2 task(s) from two" in out
    assert storage.count(alias, status="READY") == 0
    assert storage.count(alias, status="FAILED") == 0


def test_clear_queue_frees_unique_keys(alias):
    first = tasks.unique_sleep.using(backend=alias).enqueue("/dev/null", "t", 0)
    assert first is not None
    assert tasks.unique_sleep.using(backend=alias).enqueue("/dev/null", "t", 0) is None
    _run("clear_queue", "--backend-alias", alias, "--force")
    assert tasks.unique_sleep.using(backend=alias).enqueue("/dev/null", "t", 0) is not None


def test_clear_queue_refuses_a_backend_without_queue_controls():
    dummy = {"BACKEND": "django.tasks.backends.dummy.DummyBackend", "QUEUES": []}
    with (
        override_settings(TASKS={**settings.TASKS, "dummy": dummy}),
        pytest.raises(CommandError, match="cannot clear queues"),
    ):
        call_command("clear_queue", "--backend-alias", "dummy", "--force")


# -- benchmark_vtasks ----------------------------------------------------------------------------
@pytest.mark.parametrize("task_type", ["noop", "sleep"])
def test_benchmark_prints_enqueue_and_process_rates(alias, task_type):
    out = _run(
        "benchmark_vtasks", "--backend-alias", alias, "--count", "60", "--concurrency", "10",
        "--task-type", task_type, "--payload-size", "2000",
    )  # fmt: skip
    assert f"60 {task_type} task(s), payload 2000 B, concurrency 10" in out
    assert "enqueue: 60 in " in out and "process: 60 in " in out and "tasks/s" in out
    depths = task_backends[alias].queue_depths(["vtasks_benchmark"])
    assert depths.get("vtasks_benchmark", {}).get("ready", 0) == 0


# -- settings the Valkey backend reads -----------------------------------------------------------
def test_valkey_backend_reads_prefix_threshold_and_dlq_cap_settings(monkeypatch):
    from vtasks.backends.valkey import ValkeyBackend

    params = {"OPTIONS": {"BROKER_URL": "redis://127.0.0.1:6379/0"}}
    plain = ValkeyBackend("plain", params)
    assert plain.prefix == "vt" and plain.compress_threshold is None
    assert plain.create_driver().dlq_cap == 1000
    with override_settings(
        VTASKS_VALKEY_PREFIX="app:", VTASKS_COMPRESS_THRESHOLD=64, VTASKS_DLQ_CAP=7
    ):
        configured = ValkeyBackend("configured", params)
        assert configured.prefix == "app" and configured.compress_threshold == 64
        assert configured.create_driver().dlq_cap == 7
        monkeypatch.setenv("VTASKS_DLQ_CAP", "9")
        monkeypatch.setenv("VTASKS_VALKEY_PREFIX", "env")
        from_env = ValkeyBackend("env", params)
        assert from_env.prefix == "env" and from_env.create_driver().dlq_cap == 9
        explicit = ValkeyBackend("explicit", {"OPTIONS": {**params["OPTIONS"], "PREFIX": "own"}})
        assert explicit.prefix == "own"  # OPTIONS["PREFIX"] is per alias and wins
