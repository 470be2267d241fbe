"""Soak (issue #8): ``vtasks supervise`` with 4 worker children under a steady mixed load while the
RSS of the supervisor and of every child is sampled; after the warm-up none may grow over 10%.

The default is a short run that checks the machinery (CI); ``VTASKS_SOAK_SECONDS=1800`` is the real
soak. ``VTASKS_SOAK_RATE`` sets tasks per second (200), ``VTASKS_SOAK_HEARTBEAT`` the processes'
heartbeat interval (tests.settings' 0.2 s by default). The figures go to stdout and, with
``VTASKS_SOAK_REPORT=<file>``, into that file as table rows (``tests/chaos/RESULTS.md``).
"""

from __future__ import annotations

import collections
import os
import secrets
import signal
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
from django.db.models import Count
from django.tasks import task_backends

from tests import storage
from tests.chaos import harness
from tests.chaos.tasks import flaky, noop, pause, payload
from tests.conftest import storage_for
from tests.helpers import wait_for
from vtasks.drivers.valkey.driver import dlq_cap_from_env

#: Seconds of steady load in the short (CI) run; the warm-up takes the first ``MIN_WARM_UP``.
SHORT_SECONDS = 14
MIN_WARM_UP = 10.0
GROWTH_LIMIT = 0.10
#: Samples in each median (baseline and end).
WINDOW = 5
CHILDREN = 4
NAMES = {"default": "sqlite", "pg": "postgres", "valkey": "valkey"}
BLOB = secrets.token_hex(2048)  # 4 KB of arguments per payload task


def soak_seconds() -> float:
    return float(os.environ.get("VTASKS_SOAK_SECONDS") or SHORT_SECONDS)


def rate() -> float:
    return float(os.environ.get("VTASKS_SOAK_RATE") or 200)


def heartbeat() -> float:
    return float(os.environ["VTASKS_SOAK_HEARTBEAT"])


pytestmark = pytest.mark.timeout(int(soak_seconds() * 1.5) + 300)


@pytest.fixture(params=["default", "pg", "valkey"], ids=["sqlite", "postgres", "valkey"])
def alias(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from storage_for(request.param)


def mix(i: int) -> tuple[Any, tuple[Any, ...]]:
    """The i-th call: 1% fail for good, 4% fail once then succeed, 10% carry 4 KB, 25% async."""
    if i % 100 == 50:
        return flaky, (2,)
    if i % 20 == 0:
        return flaky, (1,)
    if i % 10 == 5:
        return payload, (BLOB,)
    return (pause, ()) if i % 4 == 1 else (noop, ())


class Producer(threading.Thread):
    """Enqueues ``mix(i)`` at ``rate`` tasks per second, in a bulk write every 50 ms."""

    def __init__(self, alias: str, rate: float) -> None:
        super().__init__(name="soak-producer", daemon=True)
        self.alias, self.rate = alias, rate
        self.produced = self.designed_failures = 0
        self.error: str | None = None
        self._stop = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        try:
            while not self._stop.wait(0.05):
                due = int((time.monotonic() - started) * self.rate)
                calls = [mix(i) for i in range(self.produced, due)]
                task_backends[self.alias].enqueue_many(
                    [(task.using(backend=self.alias), args, {}) for task, args in calls]
                )
                self.designed_failures += sum(args == (2,) for _, args in calls)
                self.produced = due
        except Exception as error:  # the test reports it; a dead thread would only show as lag
            self.error = repr(error)
        finally:
            connections.close_all()

    def stop(self) -> None:
        self._stop.set()
        self.join(timeout=60)


def rss_kb(pid: int) -> int:
    """VmRSS of ``pid`` in kB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Sampler(threading.Thread):
    """Every ``interval`` s, the RSS of the supervisor and its children; notes a changed child."""

    def __init__(self, supervisor: int, children: list[int], interval: float) -> None:
        super().__init__(name="soak-sampler", daemon=True)
        self.supervisor, self.children, self.interval = supervisor, children, interval
        self.pids = [supervisor, *children]
        self.samples: list[tuple[float, list[int]]] = []
        self.problems: list[str] = []
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            now = harness.children_of(self.supervisor)
            if now != self.children and len(self.problems) < 20:
                self.problems.append(f"children changed: {self.children} -> {now}")
            self.samples.append((time.monotonic(), [rss_kb(pid) for pid in self.pids]))

    def stop(self) -> None:
        self._stop.set()
        self.join(timeout=30)


@dataclass(frozen=True, slots=True, kw_only=True)
class Growth:
    """One process's RSS: the median just after the warm-up and at the end."""

    name: str
    pid: int
    base_kb: float
    end_kb: float

    @property
    def ratio(self) -> float:
        return self.end_kb / self.base_kb - 1 if self.base_kb else float("inf")


def growths(sampler: Sampler, warm_until: float) -> list[Growth]:
    rows = [values for at, values in sampler.samples if at >= warm_until]
    assert len(rows) >= 2 * WINDOW, f"only {len(rows)} samples after the warm-up"
    names = ["supervisor", *(f"child{n}" for n in range(1, len(sampler.children) + 1))]
    base = [statistics.median(column) for column in zip(*rows[:WINDOW], strict=True)]
    end = [statistics.median(column) for column in zip(*rows[-WINDOW:], strict=True)]
    return [
        Growth(name=name, pid=pid, base_kb=b, end_kb=e)
        for name, pid, b, e in zip(names, sampler.pids, base, end, strict=True)
    ]


def save_samples(alias: str, sampler: Sampler, started: float) -> None:
    """With ``VTASKS_SOAK_SAMPLES=<dir>``: every sample as ``<dir>/<backend>.csv`` (s, kB...)."""
    directory = os.environ.get("VTASKS_SOAK_SAMPLES")
    if directory:
        lines = [",".join(["seconds", *map(str, sampler.pids)])]
        lines += [f"{at - started:.1f}," + ",".join(map(str, kb)) for at, kb in sampler.samples]
        Path(directory, f"{NAMES[alias]}.csv").write_text("\n".join(lines) + "\n")


def pending(alias: str) -> int:
    depth = task_backends[alias].queue_depths(["default"]).get("default", {})
    return int(depth.get("ready", 0)) + int(depth.get("delayed", 0)) + int(depth.get("running", 0))


def statuses(alias: str) -> dict[str, int]:
    """How many stored tasks have each status (Valkey keeps the newest ``VTASKS_DLQ_CAP`` FAILED)."""
    if storage.is_valkey(alias):
        return dict(collections.Counter(r["status"] for r in storage.records(alias)))
    from vtasks.models import TaskRecord

    rows = TaskRecord.objects.using(alias).order_by().values_list("status").annotate(n=Count("seq"))
    return dict(rows)


def test_soak_rss_of_every_process_stays_within_ten_percent(alias: str, tmp_path: Path) -> None:
    seconds = soak_seconds()
    config = harness.topology(tmp_path / "vtasks.yml", alias, processes=CHILDREN)
    if os.environ.get("VTASKS_SOAK_HEARTBEAT"):  # tests.settings' 0.2 s is 25 writes/s on SQLite
        config.write_text(config.read_text() + f"heartbeat_interval: {heartbeat()}\n")
    with harness.supervise(config, tmp_path / "supervisor.log") as sup:
        wait_for(
            lambda: len(harness.children_of(sup.pid)) == CHILDREN or sup.poll() is not None,
            timeout=60, interval=0.2, what=f"{CHILDREN} children",
        )  # fmt: skip
        producer = Producer(alias, rate())
        sampler = Sampler(sup.pid, harness.children_of(sup.pid), max(0.25, seconds / 300))
        started = time.monotonic()
        producer.start()
        sampler.start()
        try:
            while time.monotonic() - started < seconds and sup.poll() is None:
                time.sleep(0.5)
        finally:
            producer.stop()
            sampler.stop()
        elapsed = time.monotonic() - started
        assert sup.poll() is None, "the supervisor died"
        backlog = pending(alias)
        wait_for(lambda: pending(alias) == 0, timeout=60 + seconds / 10, interval=1.0,
                 what="the backlog to drain")  # fmt: skip
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(timeout=60) == 0
    save_samples(alias, sampler, started)
    found = growths(sampler, started + max(MIN_WARM_UP, 0.2 * seconds))
    report(alias, elapsed, producer.produced, backlog, found)
    assert producer.error is None
    assert sampler.problems == []
    failed = producer.designed_failures
    kept = min(failed, dlq_cap_from_env()) if storage.is_valkey(alias) else failed
    assert statuses(alias) == {"SUCCESSFUL": producer.produced - failed, "FAILED": kept}
    if not storage.is_valkey(alias):  # on Valkey, a claim is the ``running`` that drained to 0
        assert storage.count(alias, claimed_by__isnull=False) == 0
    over = [g for g in found if g.ratio > GROWTH_LIMIT]
    assert not over, f"RSS grew over {GROWTH_LIMIT:.0%}: {over}"


def report(alias: str, seconds: float, tasks: int, backlog: int, found: list[Growth]) -> None:
    head = f"| {NAMES[alias]} | {seconds:.0f} | {tasks} | {tasks / seconds:.0f} | {backlog} "
    rows = [
        f"{head}| {g.name} | {g.base_kb / 1024:.1f} | {g.end_kb / 1024:.1f} "
        f"| {f'{g.ratio:+.1%}' if g.end_kb else 'gone (replaced)'} |"
        for g in found
    ]
    print("\nsoak: " + "\nsoak: ".join(rows))
    path = os.environ.get("VTASKS_SOAK_REPORT")
    if path:
        with open(path, "a") as out:
            out.write("\n".join(rows) + "\n")
