"""Schedulers under chaos: three ``vtasks scheduler`` processes per backend on a one-second
schedule while a random one is kill -9ed every 1-3 s and replaced: every slot fires exactly once.

The slot bookkeeping (a slot row with its task in one transaction; one Lua script on Valkey) is
what makes a kill between "this slot is mine" and "its task is enqueued" harmless.
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from tests import storage
from tests.conftest import storage_for
from tests.e2e.test_scheduler import TICK, _assert_each_slot_once, _fired, _scheduler
from tests.helpers import wait_for
from vtasks.models import ScheduleSlot, StoredSchedule

pytestmark = pytest.mark.timeout(180)

RUN_FOR = 20.0
PER_BACKEND = 3


def _aliases() -> list[str]:
    from tests.conftest import db_aliases, valkey_available

    wanted = [a for a in ("default", "pg") if a in db_aliases()]
    wanted += ["valkey"] if valkey_available() else []
    for alias in wanted:
        for _ in storage_for(alias):
            pass
        if not storage.is_valkey(alias):
            ScheduleSlot.objects.using(alias).all().delete()
            StoredSchedule.objects.using(alias).all().delete()
    return wanted


class SchedulerChaos(threading.Thread):
    """Kill -9 a random scheduler every 1-3 s and start its replacement at once."""

    def __init__(self, procs: dict[int, tuple[str, subprocess.Popen[bytes]]], log: IO[bytes]):
        super().__init__(name="scheduler-chaos", daemon=True)
        self.procs, self.log = procs, log
        self.kills: dict[str, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        rng = random.Random(11)
        while not self._stop.wait(rng.uniform(1.0, 3.0)):
            with self._lock:
                slot = rng.choice(sorted(self.procs))
                alias, victim = self.procs[slot]
                victim.kill()
                victim.wait()
                self.kills[alias] = self.kills.get(alias, 0) + 1
                self.procs[slot] = (alias, _scheduler(alias, self.log))

    def stop(self) -> list[subprocess.Popen[bytes]]:
        self._stop.set()
        self.join(timeout=30)
        with self._lock:
            return [proc for _, proc in self.procs.values()]


def test_killed_and_replaced_schedulers_fire_every_slot_exactly_once(tmp_path: Path) -> None:
    aliases = _aliases()
    with open(tmp_path / "schedulers.log", "ab") as log:
        procs = {
            i: (alias, _scheduler(alias, log))
            for i, alias in enumerate(a for a in aliases for _ in range(PER_BACKEND))
        }
        chaos = SchedulerChaos(procs, log)
        try:
            wait_for(lambda: all(storage.count(a) for a in aliases), timeout=60,
                     what="every backend's first slot")  # fmt: skip
            chaos.start()
            time.sleep(RUN_FOR)
        finally:
            survivors = chaos.stop() if chaos.is_alive() else [p for _, p in procs.values()]
            for proc in survivors:
                proc.send_signal(signal.SIGTERM)
            codes = [proc.wait(timeout=30) for proc in survivors]
    assert codes == [0] * len(survivors), (tmp_path / "schedulers.log").read_text()[-3000:]
    print(f"\nscheduler chaos: kills per backend {chaos.kills}")
    assert sum(chaos.kills.values()) >= 5
    for alias in aliases:
        ticks = _fired(alias, TICK)
        assert len(ticks) >= RUN_FOR, f"{alias}: only {len(ticks)} slots fired"
        if storage.is_valkey(alias):
            _assert_each_slot_once(alias, ticks, "tick")
        else:
            _assert_slot_rows(alias)


def _assert_slot_rows(alias: str) -> None:
    """One slot row per second, none missed, each with its own task and no task without one."""
    from datetime import datetime, timedelta

    from vtasks.models import TaskRecord

    slots = list(ScheduleSlot.objects.using(alias).filter(schedule="tick").order_by("slot"))
    times = [datetime.strptime(s.slot, "%Y-%m-%dT%H:%M:%S.%fZ") for s in slots]
    gaps = {b - a for a, b in zip(times, times[1:], strict=False)}
    assert gaps == {timedelta(seconds=1)}, f"{alias}: a slot missed: {times}"
    task_ids = sorted(TaskRecord.objects.using(alias).values_list("id", flat=True))
    assert task_ids == sorted(s.task_id for s in slots), f"{alias}: a slot fired twice"
