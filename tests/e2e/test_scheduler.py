"""Recurring tasks: several schedulers at once fire every slot exactly once, on every backend."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta

import pytest

from tests import storage
from tests.conftest import db_aliases, storage_for, valkey_available
from tests.helpers import ROOT, wait_for
from vtasks import schedules
from vtasks.models import ScheduleSlot, StoredSchedule
from vtasks.runtime.scheduler import RELOAD_EVERY

pytestmark = pytest.mark.timeout(150)

RUN_FOR = 21.0  # seconds: the issue asks for at least 20 on a one-second schedule
#: The dynamic schedule runs for this long inside the run, then is removed.
DYNAMIC_FOR = 10.0
TICK, DYN = [1, 2], [3, 4]  # the arguments that tell the two schedules' tasks apart


def _scheduler(alias: str, log) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "vtasks.cli.main", "--settings", "tests.settings",
           "--pythonpath", str(ROOT), "scheduler", "--backend", alias]  # fmt: skip
    env = {**os.environ, "VTASKS_TEST_SCHEDULE_EVERY": "1"}
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def _aliases() -> list[str]:
    """Every backend of this run, emptied."""
    aliases = db_aliases() + (["valkey"] if valkey_available() else [])
    for alias in aliases:
        _empty(alias)
    return aliases


def _empty(alias: str) -> None:
    for _ in storage_for(alias):  # empties the alias's tasks (and, on Valkey, every key)
        pass
    if not storage.is_valkey(alias):
        ScheduleSlot.objects.using(alias).all().delete()
        StoredSchedule.objects.using(alias).all().delete()


def _fired(alias: str, args: list[int]) -> list[datetime]:
    """When each task of one schedule was enqueued, in order."""
    found = []
    for record in storage.records(alias):
        stored = record["args"]
        if (json.loads(stored) if isinstance(stored, str) else stored) == args:
            found.append(record["enqueued_at"])
    return sorted(found)


def _assert_each_slot_once(alias: str, fired: list[datetime], what: str) -> None:
    """One task per one-second slot, no slot missed. Valkey keeps no row per slot, but a slot's
    task is built the moment its scheduler sees the slot due (well within that second), so the
    whole seconds of the enqueue times are the slots."""
    seconds = [int(when.timestamp()) for when in fired]
    assert seconds == list(range(seconds[0], seconds[0] + len(seconds))), (
        f"{alias} {what}: slots fired twice or missed: {seconds}"
    )


def test_three_schedulers_fire_each_one_second_slot_exactly_once(tmp_path):
    aliases = _aliases()
    with open(tmp_path / "schedulers.log", "ab") as log:
        procs = [_scheduler(alias, log) for alias in aliases for _ in range(3)]
    try:
        # Count from the first fired slot: starting Django in a dozen processes on a loaded
        # machine takes seconds, and that is not what this test measures.
        wait_for(lambda: all(storage.count(a) for a in aliases), timeout=60,
                 what="every backend's first slot")  # fmt: skip
        started = time.monotonic()
        for alias in aliases:  # picked up by the running schedulers, no restart
            schedules.add("dyn", "tests.tasks.add", 1, args=DYN, backend=alias)
        time.sleep(DYNAMIC_FOR)
        for alias in aliases:
            schedules.remove("dyn", backend=alias)
        removed = datetime.now().astimezone()
        time.sleep(max(0.0, RUN_FOR - (time.monotonic() - started)))
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=30) for proc in procs]
    assert codes == [0] * len(procs), (tmp_path / "schedulers.log").read_text()[-3000:]
    for alias in aliases:
        ticks, dyns = _fired(alias, TICK), _fired(alias, DYN)
        assert len(ticks) >= RUN_FOR - 1, f"{alias}: only {len(ticks)} slots fired"
        assert len(dyns) >= DYNAMIC_FOR - RELOAD_EVERY - 2, f"{alias}: only {len(dyns)} dyn slots"
        assert dyns[-1] < removed + timedelta(seconds=RELOAD_EVERY + 1.5), (
            f"{alias}: dyn still fired at {dyns[-1]} after its removal at {removed}"
        )
        assert storage.count(alias) == len(ticks) + len(dyns)
        if storage.is_valkey(alias):
            _assert_each_slot_once(alias, ticks, "tick")
            _assert_each_slot_once(alias, dyns, "dyn")
        else:
            _assert_slot_rows(alias)


def _assert_slot_rows(alias: str) -> None:
    """The database's own record: one row per (schedule, slot), each with its task."""
    from vtasks.models import TaskRecord

    for name in ("tick", "dyn"):
        slots = list(ScheduleSlot.objects.using(alias).filter(schedule=name).order_by("slot"))
        times = [datetime.strptime(s.slot, "%Y-%m-%dT%H:%M:%S.%fZ") for s in slots]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert set(gaps) == {timedelta(seconds=1)}, f"{alias} {name}: a slot missed: {times}"
    task_ids = sorted(TaskRecord.objects.using(alias).values_list("id", flat=True))
    slot_tasks = sorted(ScheduleSlot.objects.using(alias).values_list("task_id", flat=True))
    assert task_ids == slot_tasks, f"{alias}: a slot fired twice or lost its task"


@pytest.mark.parametrize("command", ["supervise", "scheduler"])
def test_yaml_schedules_win_over_vtasks_schedule(command, tmp_path):
    """Through the supervisor's scheduler child, and a lone ``vtasks scheduler --config``."""
    alias = "default"
    _empty(alias)
    config = tmp_path / "vtasks.yml"
    config.write_text(
        "backend: default\n"
        "workers: [{name: w, queues: [elsewhere], concurrency: 1}]\n"
        "scheduler:\n"
        "  enabled: true\n"
        "  schedules:\n"
        "    tick: {task: tests.tasks.add, schedule: 1, args: [5, 5]}\n"
        "    from-yaml: {task: tests.tasks.add, schedule: '* * * * * *', args: [7, 7]}\n"
    )
    cmd = [sys.executable, "-m", "vtasks.cli.main", "--settings", "tests.settings",
           "--pythonpath", str(ROOT), command, "--config", str(config)]  # fmt: skip
    env = {**os.environ, "VTASKS_TEST_SCHEDULE_EVERY": "1"}
    with open(tmp_path / "out.log", "ab") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: len(_fired(alias, [5, 5])) >= 2 and len(_fired(alias, [7, 7])) >= 2,
                 timeout=60, what="both YAML schedules to fire twice")  # fmt: skip
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0, (tmp_path / "out.log").read_text()[-3000:]
    assert _fired(alias, TICK) == []  # the setting's "tick" never ran: the YAML's replaced it


def test_a_lone_scheduler_with_a_bad_schedule_in_its_file_exits_2(tmp_path):
    config = tmp_path / "vtasks.yml"
    config.write_text("scheduler:\n  schedules:\n    t: {task: tests.tasks.add, schedule: nope}\n")
    cmd = [sys.executable, "-m", "vtasks.cli.main", "--settings", "tests.settings",
           "--pythonpath", str(ROOT), "scheduler", "--config", str(config)]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 2
    assert "scheduler.schedules.t.schedule: must be a cron expression or seconds, got 'nope'" in (
        run.stderr
    )
