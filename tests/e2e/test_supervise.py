"""The real ``vtasks supervise`` process tree: tasks run, kill -9 of a child, SIGTERM, bad YAML."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.tasks import TaskResultStatus

from tests import tasks
from tests.helpers import ROOT, lines, wait_for
from vtasks.models import ProcessRecord, TaskRecord, UniqueLock

pytestmark = pytest.mark.timeout(120)

CLI = [sys.executable, "-m", "vtasks.cli.main", "--settings", "tests.settings",
       "--pythonpath", str(ROOT)]  # fmt: skip


@pytest.fixture(params=["default", "pg"], ids=["sqlite", "postgres"])
def alias(request: pytest.FixtureRequest) -> Iterator[str]:
    """SQLite and PostgreSQL: the supervisor is database-agnostic, two drivers are enough here."""
    from django.conf import settings

    if request.param not in settings.DATABASES:
        pytest.skip(f"database {request.param} is not available")
    for model in (TaskRecord, ProcessRecord, UniqueLock):
        model.objects.using(request.param).all().delete()
    yield request.param


def topology(
    tmp_path: Path, alias: str, *, processes: int = 2, shutdown_timeout: float = 3
) -> Path:
    path = tmp_path / "vtasks.yml"
    path.write_text(
        textwrap.dedent(f"""\
            backend: {alias}
            shutdown_timeout: {shutdown_timeout}
            workers:
              - name: w
                queues: [default]
                concurrency: 4
                processes: {processes}
            """)
    )
    return path


@contextlib.contextmanager
def supervisor(config: Path, *args: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``vtasks supervise`` in its own session; whatever survives the test is killed as a group."""
    env = {**os.environ, "VTASKS_LOG_LEVEL": "INFO"}
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [*CLI, "supervise", "--config", str(config), *args], env=env, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def workers(alias: str) -> list[ProcessRecord]:
    return list(ProcessRecord.objects.using(alias).filter(kind="worker"))


def parent_of(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:"))


def alive(pid: int) -> bool:
    return parent_of(pid) is not None


def test_children_process_tasks_and_sigterm_stops_the_tree(alias, tmp_path):
    out = tmp_path / "done"
    for i in range(40):
        tasks.record.using(backend=alias).enqueue(str(out), str(i))
    with supervisor(topology(tmp_path, alias), log=tmp_path / "sup.log") as sup:
        wait_for(lambda: len(lines(out)) >= 40, timeout=60, what="40 completions")
        wait_for(lambda: len(workers(alias)) == 2, what="two registered children")
        pids = [record.pid for record in workers(alias)]
        assert all(parent_of(pid) == sup.pid for pid in pids)  # forked by the supervisor
        started = time.monotonic()
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(timeout=3 + 5 + 5) == 0
        assert time.monotonic() - started < 8
    assert sorted(lines(out), key=int) == [str(i) for i in range(40)]
    assert not any(alive(pid) for pid in pids)
    assert workers(alias) == []  # both children deregistered on their way out


def test_kill_9_of_a_child_restarts_it_and_its_task_is_recovered(alias, tmp_path):
    out = tmp_path / "done"
    result = tasks.sleep_then_record.using(backend=alias, max_attempts=3).enqueue(
        str(out), "slow", 2.0
    )
    with supervisor(topology(tmp_path, alias), log=tmp_path / "sup.log") as sup:
        wait_for(
            lambda: TaskRecord.objects.using(alias).filter(id=result.id, status="RUNNING").exists(),
            what="a child to claim the task",
        )
        claimant = TaskRecord.objects.using(alias).get(id=result.id).claimed_by
        victim = ProcessRecord.objects.using(alias).get(id=claimant).pid
        assert parent_of(victim) == sup.pid
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: len([w for w in workers(alias) if w.pid != victim]) == 2,
            timeout=30, what="the killed child to be replaced",
        )  # fmt: skip
        wait_for(lambda: lines(out) == ["slow"], timeout=30, what="the recovered task to run")
        wait_for(
            lambda: (result.refresh(), result.status)[1] == TaskResultStatus.SUCCESSFUL, what="ack"
        )
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(timeout=20) == 0
    assert result.attempts == 2
    assert [e.exception_class_path for e in result.errors] == ["vtasks.core.errors.WorkerLost"]


def test_sigterm_hands_back_unfinished_work_within_the_timeout(alias, tmp_path):
    result = tasks.sleep_then_record.using(backend=alias).enqueue(str(tmp_path / "x"), "long", 30.0)
    config = topology(tmp_path, alias, processes=1, shutdown_timeout=0.5)
    with supervisor(config, log=tmp_path / "sup.log") as sup:
        wait_for(
            lambda: TaskRecord.objects.using(alias).filter(id=result.id, status="RUNNING").exists(),
            what="the child to claim the task",
        )
        started = time.monotonic()
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(timeout=20) == 0
        assert time.monotonic() - started < 0.5 + 5
    result.refresh()
    assert result.status == TaskResultStatus.READY and result.errors == []


def test_sighup_replaces_every_child(alias, tmp_path):
    with supervisor(topology(tmp_path, alias), log=tmp_path / "sup.log") as sup:
        wait_for(lambda: len(workers(alias)) == 2, what="two registered children")
        old = {record.pid for record in workers(alias)}
        sup.send_signal(signal.SIGHUP)
        wait_for(
            lambda: len(workers(alias)) == 2 and not old & {w.pid for w in workers(alias)},
            timeout=30, what="two new children",
        )  # fmt: skip
        # The last old child deregisters just before it exits (rolling reload: it drains while
        # its replacement already serves), so its exit may trail its row by a moment.
        wait_for(lambda: not any(alive(pid) for pid in old), timeout=20, what="the old to exit")
        assert all(parent_of(w.pid) == sup.pid for w in workers(alias))
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(timeout=20) == 0


def test_burst_exits_zero_once_the_queues_are_empty(alias, tmp_path):
    out = tmp_path / "done"
    for i in range(20):
        tasks.record.using(backend=alias).enqueue(str(out), str(i))
    with supervisor(topology(tmp_path, alias), "--burst", log=tmp_path / "sup.log") as sup:
        assert sup.wait(timeout=60) == 0
    assert sorted(lines(out), key=int) == [str(i) for i in range(20)]


# -- configuration errors and `vtasks check` (no database needed) -----------------------------
def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60)


def test_a_bad_file_exits_2_naming_path_rule_value_and_line(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("workers:\n  - name: w\n    queues: [default]\n    concurrency: 0\n")
    for command in ("supervise", "check"):
        run = run_cli(command, "--config", str(path))
        assert run.returncode == 2, run.stderr
        assert f"workers[0].concurrency: must be >= 1, got 0 ({path}:4)" in run.stderr
        assert str(path) in run.stderr.splitlines()[0]


def test_a_yaml_syntax_error_exits_2_naming_the_line(tmp_path):
    path = tmp_path / "broken.yml"
    path.write_text("workers:\n  - name: w\n    queues: [default\n")
    run = run_cli("supervise", "--config", str(path))
    assert run.returncode == 2 and f"{path}:4: YAML syntax error" in run.stderr, run.stderr


def test_an_unknown_backend_alias_exits_2(tmp_path):
    path = tmp_path / "vtasks.yml"
    path.write_text("backend: nope\n")
    run = run_cli("supervise", "--config", str(path))
    assert run.returncode == 2 and "backend: no TASKS alias 'nope'" in run.stderr, run.stderr


def test_check_prints_the_resolved_config_and_its_sources(tmp_path):
    path = topology(tmp_path, "default")
    run = run_cli("check", "--config", str(path), "--concurrency", "7")
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "configuration is valid" in out
    assert "workers[0].processes = 2" in out and f"{path}:7" in out
    assert "heartbeat_interval = 0.2" in out and "Django setting VTASKS_HEARTBEAT_INTERVAL" in out
    assert "django_settings = tests.settings" in out and "# command line" in out


def test_kill_9_of_the_supervisor_stops_its_children_and_a_new_one_recovers(alias, tmp_path):
    out = tmp_path / "done"
    result = tasks.sleep_then_record.using(backend=alias, max_attempts=3).enqueue(
        str(out), "slow", 30.0
    )
    config = topology(tmp_path, alias, shutdown_timeout=0.5)
    with supervisor(config, log=tmp_path / "first.log") as first:
        wait_for(
            lambda: TaskRecord.objects.using(alias).filter(id=result.id, status="RUNNING").exists(),
            what="a child to claim the task",
        )
        pids = [record.pid for record in workers(alias)]
        os.kill(first.pid, signal.SIGKILL)
        # The kernel TERMs the orphans (PR_SET_PDEATHSIG): they drain and hand the task back.
        wait_for(lambda: not any(alive(pid) for pid in pids), timeout=20, what="orphans to exit")
    TaskRecord.objects.using(alias).filter(id=result.id).update(
        args=f'["{out}", "slow", 0.1]'.replace("\\", "\\\\")
    )
    with supervisor(config, log=tmp_path / "second.log") as second:
        wait_for(lambda: lines(out) == ["slow"], timeout=30, what="the second tree to run it")
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=20) == 0


def test_vtasks_health_follows_the_supervisor(alias, tmp_path):
    config = topology(tmp_path, alias, processes=1)
    health_file = tmp_path / "health"
    config.write_text(config.read_text() + f"health_file: {health_file}\nalive_threshold: 2\n")
    probe = [*CLI, "health", "--config", str(config)]
    assert subprocess.run(probe, capture_output=True, timeout=60).returncode == 1  # not running yet
    with supervisor(config, log=tmp_path / "sup.log") as sup:
        wait_for(lambda: health_file.exists(), what="the health file")
        ok = subprocess.run(probe, capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0, ok.stderr
        os.kill(sup.pid, signal.SIGSTOP)  # a stuck supervisor stops rewriting the file
        try:
            time.sleep(2.5)
            stale = subprocess.run(probe, capture_output=True, text=True, timeout=60)
        finally:
            os.kill(sup.pid, signal.SIGCONT)
        assert stale.returncode == 1 and "stale" in stale.stderr
