"""Queue controls on every backend: ``vtasks.QueueInfo`` (size, latency, pause/resume, clear),
retrying failed tasks (``vtasks retry`` / ``manage.py vtasks_retry``), and the commands."""

from __future__ import annotations

import io
import subprocess

from django.core.management import call_command
from django.tasks import TaskResultStatus

import vtasks
from tests import tasks
from tests.helpers import vtasks_command, work
from vtasks.ops.retry import retry_failed

QUEUE = "controls"


def test_a_paused_queue_is_not_claimed_until_resumed(alias):
    results = [tasks.add.using(backend=alias, queue_name=QUEUE).enqueue(i, i) for i in range(3)]
    info = vtasks.QueueInfo(QUEUE, backend=alias)
    assert (info.size, info.paused) == (3, False)
    assert info.latency >= 0.0
    info.pause()
    assert info.paused
    worker = work(alias, [QUEUE])  # a burst worker: nothing to claim, it leaves at once
    assert worker.processed == 0
    assert info.size == 3
    assert info.resume() is True and info.resume() is False
    assert work(alias, [QUEUE]).processed == 3
    for result in results:
        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL
    assert info.size == 0 and info.latency == 0.0


def test_a_paused_queue_without_tasks_is_listed_and_others_are_served(alias):
    info = vtasks.QueueInfo("empty-paused", backend=alias)
    info.pause()
    try:
        other = tasks.add.using(backend=alias, queue_name=QUEUE).enqueue(1, 1)
        assert work(alias, ["empty-paused", QUEUE]).processed == 1
        other.refresh()
        assert other.status == TaskResultStatus.SUCCESSFUL
        assert info.paused and info.size == 0
    finally:
        info.resume()


def test_clear_through_queue_info(alias):
    for i in range(4):
        tasks.add.using(backend=alias, queue_name=QUEUE).enqueue(i, i)
    assert vtasks.QueueInfo(QUEUE, backend=alias).clear() == 4
    assert vtasks.QueueInfo(QUEUE, backend=alias).size == 0


def test_retry_failed_by_task_and_queue(alias):
    failing = [tasks.fail.using(backend=alias, queue_name=QUEUE).enqueue() for _ in range(2)]
    other = tasks.picky.using(backend=alias, queue_name=QUEUE).enqueue("/dev/null", "value")
    elsewhere = tasks.fail.using(backend=alias).enqueue()
    work(alias, [QUEUE, "default"])
    for result in [*failing, other, elsewhere]:
        result.refresh()
        assert result.status == TaskResultStatus.FAILED
    assert retry_failed(alias, queue=QUEUE, task_path="tests.tasks.fail") == {QUEUE: 2}
    for result in failing:
        result.refresh()
        assert result.status == TaskResultStatus.READY and len(result.errors) == 1
    other.refresh()
    assert other.status == TaskResultStatus.FAILED
    out = io.StringIO()
    call_command("vtasks_retry", "--failed", "--backend", alias, stdout=out)
    assert f"retried 1 failed task(s) in {QUEUE}" in out.getvalue()
    assert "retried 1 failed task(s) in default" in out.getvalue()
    other.refresh()
    assert other.status == TaskResultStatus.READY


def test_manage_py_queue_and_status_commands(alias):
    tasks.add.using(backend=alias, queue_name=QUEUE).enqueue(1, 2)
    out = io.StringIO()
    call_command("vtasks_queue", "pause", QUEUE, "--backend", alias, stdout=out)
    call_command("vtasks_queue", "info", QUEUE, "--backend", alias, stdout=out)
    call_command("vtasks_status", "--backend", alias, stdout=out)
    call_command("vtasks_queue", "clear", QUEUE, "--backend", alias, stdout=out,
                 stdin=io.StringIO("n\n"))  # fmt: skip
    call_command("vtasks_queue", "resume", QUEUE, "--backend", alias, stdout=out)
    call_command("vtasks_queue", "clear", QUEUE, "--backend", alias, "--force", stdout=out)
    text = out.getvalue()
    assert f"vtasks: paused {QUEUE}" in text
    assert f"{QUEUE}: size=1 ready=1" in text and "paused=True" in text
    assert f"{QUEUE}: ready=1" in text and "PAUSED" in text  # vtasks_status
    assert "nothing cleared" in text
    assert f"vtasks: resumed {QUEUE}" in text
    assert "vtasks: cleared 1 task(s)" in text


def test_the_vtasks_command_line(db_alias):
    result = tasks.fail.using(backend=db_alias, queue_name=QUEUE).enqueue()
    work(db_alias, [QUEUE])

    def run(*args: str) -> str:
        done = subprocess.run(vtasks_command(*args), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "paused" in run("queue", "pause", QUEUE, "--backend", db_alias)
    out = run("retry", "--failed", "--task", "tests.tasks.fail", "--backend", db_alias)
    assert f"retried 1 failed task(s) of tests.tasks.fail in {QUEUE}" in out
    assert "paused=True" in run("queue", "info", QUEUE, "--backend", db_alias)
    assert "resumed" in run("queue", "resume", QUEUE, "--backend", db_alias)
    result.refresh()
    assert result.status == TaskResultStatus.READY
