"""Recurring tasks: several schedulers at once fire every slot exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta

import pytest

from tests.conftest import db_aliases
from tests.helpers import ROOT, wait_for
from vtasks.models import ScheduleSlot, TaskRecord

pytestmark = pytest.mark.timeout(120)

RUN_FOR = 21.0  # seconds: the issue asks for at least 20 on a one-second schedule


def _scheduler(alias: str, log) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "vtasks.cli.main", "--settings", "tests.settings",
           "--pythonpath", str(ROOT), "scheduler", "--backend", alias]  # fmt: skip
    env = {**os.environ, "VTASKS_TEST_SCHEDULE_EVERY": "1"}
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)


def test_three_schedulers_fire_each_one_second_slot_exactly_once(tmp_path):
    aliases = db_aliases()
    for alias in aliases:
        ScheduleSlot.objects.using(alias).all().delete()
        TaskRecord.objects.using(alias).all().delete()
    with open(tmp_path / "schedulers.log", "ab") as log:
        procs = [_scheduler(alias, log) for alias in aliases for _ in range(3)]
    try:
        # Count from the first fired slot: starting Django in nine processes on a loaded machine
        # takes seconds, and that is not what this test measures.
        wait_for(
            lambda: all(ScheduleSlot.objects.using(a).exists() for a in aliases),
            timeout=60, what="every backend's first slot",
        )  # fmt: skip
        time.sleep(RUN_FOR)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=30) for proc in procs]
    assert codes == [0] * len(procs), (tmp_path / "schedulers.log").read_text()[-3000:]
    for alias in aliases:
        slots = list(ScheduleSlot.objects.using(alias).filter(schedule="tick").order_by("slot"))
        times = [datetime.strptime(s.slot, "%Y-%m-%dT%H:%M:%S.%fZ") for s in slots]
        assert len(times) >= RUN_FOR - 1, f"{alias}: only {len(times)} slots fired"
        assert all(b - a == timedelta(seconds=1) for a, b in zip(times, times[1:], strict=False)), (
            alias
        )
        task_ids = sorted(TaskRecord.objects.using(alias).values_list("id", flat=True))
        assert task_ids == sorted(s.task_id for s in slots), (
            f"{alias}: a slot fired twice or lost its task"
        )
