"""Real ``vtasks worker`` processes: exactly-once under concurrency, kill -9 recovery, SIGTERM drain."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import threading
import time

from django.tasks import TaskResultStatus, task_backends

from tests import storage, tasks
from tests.helpers import lines, spawn_worker, wait_for
from vtasks.models import ProcessRecord


def test_1000_tasks_from_4_threads_run_exactly_once_on_2_workers(alias, tmp_path):
    out = tmp_path / "done"
    task = tasks.record.using(backend=alias)

    def producer(n: int) -> None:
        for i in range(250):
            task.enqueue(str(out), f"{n}-{i}")
        from django.db import connections

        connections.close_all()

    workers = [
        spawn_worker(alias, "--concurrency", "8", log=tmp_path / f"w{i}.log") for i in range(2)
    ]
    try:
        threads = [threading.Thread(target=producer, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wait_for(lambda: len(lines(out)) >= 1000, timeout=90, what="1000 completions")
        time.sleep(0.5)  # anything run twice would show up now
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        codes = [w.wait(timeout=30) for w in workers]
    counts = collections.Counter(lines(out))
    assert len(counts) == 1000 and set(counts.values()) == {1}
    assert codes == [0, 0]
    assert storage.count(alias, status="SUCCESSFUL") == 1000
    assert storage.process_count(alias) == 0  # both deregistered


def test_kill_9_mid_task_loses_nothing(alias, tmp_path):
    out = tmp_path / "done"
    result = tasks.sleep_then_record.using(backend=alias, max_attempts=3).enqueue(
        str(out), "slow", 3.0
    )
    victim = spawn_worker(alias, log=tmp_path / "victim.log")
    wait_for(
        lambda: storage.status(alias, result.id) == "RUNNING",
        what="the victim to claim the task",
    )
    victim.kill()
    victim.wait(timeout=10)
    rescuer = spawn_worker(alias, log=tmp_path / "rescuer.log")
    try:
        wait_for(lambda: lines(out) == ["slow"], timeout=30, what="the rescued task to run")
        result.refresh()
        wait_for(
            lambda: (result.refresh(), result.status)[1] == TaskResultStatus.SUCCESSFUL, what="ack"
        )
    finally:
        rescuer.send_signal(signal.SIGTERM)
        assert rescuer.wait(timeout=30) == 0
    assert result.attempts == 2
    assert [e.exception_class_path for e in result.errors] == ["vtasks.core.errors.WorkerLost"]


def test_kill_9_on_the_last_attempt_fails_the_task(alias, tmp_path):
    result = tasks.sleep_then_record.using(backend=alias).enqueue(str(tmp_path / "x"), "slow", 5.0)
    victim = spawn_worker(alias)
    wait_for(lambda: storage.status(alias, result.id) == "RUNNING")
    victim.kill()
    victim.wait(timeout=10)
    rescuer = spawn_worker(alias)
    try:
        wait_for(
            lambda: (result.refresh(), result.status)[1] == TaskResultStatus.FAILED, timeout=30
        )
    finally:
        rescuer.send_signal(signal.SIGTERM)
        rescuer.wait(timeout=30)
    assert result.errors[-1].exception_class_path == "vtasks.core.errors.WorkerLost"


def test_sigterm_finishes_running_tasks_and_stops_claiming(alias, tmp_path):
    out = tmp_path / "done"
    running = tasks.sleep_then_record.using(backend=alias).enqueue(str(out), "in-flight", 1.0)
    worker = spawn_worker(alias, "--concurrency", "1")
    wait_for(lambda: storage.status(alias, running.id) == "RUNNING")
    waiting = tasks.record.using(backend=alias).enqueue(str(out), "queued")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    running.refresh()
    waiting.refresh()
    assert running.status == TaskResultStatus.SUCCESSFUL
    assert waiting.status == TaskResultStatus.READY and lines(out) == ["in-flight"]


def test_shutdown_timeout_hands_back_unfinished_work(alias, tmp_path):
    result = tasks.sleep_then_record.using(backend=alias).enqueue(str(tmp_path / "x"), "long", 30.0)
    os.environ["VTASKS_SHUTDOWN_TIMEOUT"] = "0.5"
    try:
        worker = spawn_worker(alias)
    finally:
        del os.environ["VTASKS_SHUTDOWN_TIMEOUT"]
    wait_for(lambda: storage.status(alias, result.id) == "RUNNING")
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0
    assert time.monotonic() - started < 10
    result.refresh()
    assert result.status == TaskResultStatus.READY and result.errors == []


def test_burst_exits_zero_when_the_queues_are_empty(alias, tmp_path):
    out = tmp_path / "done"
    for i in range(20):
        tasks.record.using(backend=alias).enqueue(str(out), str(i))
    proc = spawn_worker(alias, "--burst", "--concurrency", "4")
    assert proc.wait(timeout=60) == 0
    assert sorted(lines(out), key=int) == [str(i) for i in range(20)]
    first = storage.records(alias)[0]["id"]
    assert task_backends[alias].get_result(first).status == "SUCCESSFUL"


def test_manage_py_runworker_and_vtasks_prune(alias, tmp_path):
    import sys

    from tests.helpers import ROOT

    out = tmp_path / "done"
    tasks.record.using(backend=alias, result_ttl=0.01).enqueue(str(out), "via-runworker")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    django_admin = [sys.executable, "-m", "django"]
    run = subprocess.run(
        [*django_admin, "runworker", "--backend", alias, "--burst"], env=env, timeout=60
    )
    assert run.returncode == 0 and lines(out) == ["via-runworker"]
    time.sleep(0.05)
    prune = subprocess.run(
        [*django_admin, "vtasks_prune", "--backend", alias],
        env=env,
        timeout=60,
        capture_output=True,
        text=True,
    )
    assert prune.returncode == 0 and f"purged {storage.purged(alias, 1)} result(s)" in prune.stdout
    assert storage.count(alias) == 0


def test_vtasks_purge_command(alias, tmp_path):
    from tests.helpers import vtasks_command, work

    tasks.add.using(backend=alias, result_ttl=0.01).enqueue(1, 1)
    kept = tasks.add.using(backend=alias).enqueue(2, 2)
    work(alias)
    time.sleep(0.05)
    run = subprocess.run(
        vtasks_command("purge", "--backend", alias), capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0 and f"purged {storage.purged(alias, 1)} result(s)" in run.stdout
    assert [r["id"] for r in storage.records(alias)] == [kept.id]


def test_vtasks_status_shows_queues_and_processes(db_alias, tmp_path):
    from datetime import timedelta

    from tests.helpers import vtasks_command

    tasks.add.using(backend=db_alias, queue_name="reports").enqueue(1, 1)
    tasks.add.using(backend=db_alias, queue_name="reports", run_after=timedelta(hours=1)).enqueue(
        1, 1
    )
    worker = spawn_worker(db_alias, "--queue", "idle")
    try:
        wait_for(
            lambda: ProcessRecord.objects.using(db_alias).exists(), what="the worker to register"
        )
        run = subprocess.run(
            vtasks_command("status", "--backend", db_alias),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert run.returncode == 0, run.stderr
    assert "reports: ready=1 delayed=1 running=0 failed=0" in run.stdout
    assert "worker " in run.stdout and f"pid={worker.pid}" in run.stdout
