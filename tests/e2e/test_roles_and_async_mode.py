"""``vtasks supervise`` roles (``--only-work``, ``--only-schedule``) and ``mode: async`` (every
role as asyncio tasks of one process), with the real command."""

from __future__ import annotations

import signal
import textwrap
import time
from pathlib import Path

import pytest

from tests import tasks
from tests.e2e import test_supervise
from tests.helpers import lines, wait_for
from vtasks.models import ProcessRecord, TaskRecord

alias = test_supervise.alias  # the fixture: SQLite and PostgreSQL, tables emptied
supervisor = test_supervise.supervisor

pytestmark = pytest.mark.timeout(120)


def config(tmp_path: Path, db: str, mode: str = "fork") -> Path:
    path = tmp_path / "vtasks.yml"
    path.write_text(
        textwrap.dedent(f"""\
            backend: {db}
            mode: {mode}
            shutdown_timeout: 3
            workers:
              - {{name: plain, queues: [default], concurrency: 2, processes: 2}}
              - {{name: mail, queues: ["email*"], concurrency: 2}}
            scheduler:
              enabled: true
              schedules:
                tick: {{task: tests.tasks.add, schedule: 1, args: [1, 2]}}
            """)
    )
    return path


def ticks(db: str, **where: object) -> int:
    return TaskRecord.objects.using(db).filter(task_path="tests.tasks.add", **where).count()


def workers(db: str) -> list[ProcessRecord]:
    return list(ProcessRecord.objects.using(db).filter(kind="worker"))


def test_async_mode_runs_every_role_in_one_process(alias, tmp_path):
    out, log = tmp_path / "done", tmp_path / "supervise.log"
    with supervisor(config(tmp_path, alias, "async"), log=log) as proc:
        wait_for(lambda: len(workers(alias)) == 3, timeout=30, what="three worker rows")
        assert {row.pid for row in workers(alias)} == {proc.pid}  # no child process
        record = tasks.record.using(backend=alias)
        record.using(queue_name="default").enqueue(str(out), "default")
        record.using(queue_name="email.welcome").enqueue(str(out), "email")
        wait_for(lambda: sorted(lines(out)) == ["default", "email"], what="both tasks to run")
        wait_for(lambda: ticks(alias, status="SUCCESSFUL") >= 1, what="a scheduled task run")
        slow = tasks.sleep_then_record.using(backend=alias).enqueue(str(out), "slow", 1.0)
        wait_for(lambda: slow.refresh() or slow.status == "RUNNING", what="the slow task")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
    slow.refresh()
    assert slow.status == "SUCCESSFUL"
    assert workers(alias) == []
    assert "Traceback" not in log.read_text()


def test_only_schedule_fires_but_runs_nothing_and_only_work_the_reverse(alias, tmp_path):
    path, log = config(tmp_path, alias), tmp_path / "supervise.log"
    with supervisor(path, "--only-schedule", log=log):
        wait_for(lambda: ticks(alias) >= 2, timeout=30, what="the scheduler to fire")
        assert workers(alias) == []
        assert ticks(alias, status="SUCCESSFUL") == 0
    TaskRecord.objects.using(alias).all().delete()
    out = tmp_path / "done"
    with supervisor(path, "--only-work", log=log):
        wait_for(lambda: len(workers(alias)) == 3, timeout=30, what="three worker rows")
        tasks.record.using(backend=alias).enqueue(str(out), "work")
        wait_for(lambda: lines(out) == ["work"], what="the task to run")
        time.sleep(2.5)  # a scheduler would have fired twice by now
        assert ticks(alias) == 0
