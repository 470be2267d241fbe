"""``/metrics`` and ``/healthz`` of a real tree (``vtasks supervise``) and of a lone worker: the
counters scraped match the tasks that ran, across children and a child's kill -9."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.tasks import task_backends
from prometheus_client.parser import text_string_to_metric_families

from tests import tasks
from tests.conftest import storage_for
from tests.e2e.test_supervise import parent_of, supervisor
from tests.helpers import lines, spawn_worker, wait_for

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(params=["default", "valkey"], ids=["sqlite", "valkey"])
def alias(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from storage_for(request.param)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics``: (name, sorted labels) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def scraped(port: int) -> dict:
    try:
        return scrape(port)
    except (urllib.error.URLError, ConnectionError):
        return {}


def healthz(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def enqueue_mix(alias: str, tmp_path: Path) -> None:
    """10 successes, 3 tasks that fail once then succeed (3 retries), 4 final failures."""
    for i in range(10):
        tasks.record.using(backend=alias).enqueue(str(tmp_path / "done"), str(i))
    for i in range(3):
        tasks.flaky.using(backend=alias).enqueue(str(tmp_path / f"flaky{i}"), 1)
    for _ in range(4):
        tasks.fail.using(backend=alias).enqueue()


def processed(samples: dict, task: str, status: str) -> float:
    return value(
        samples, "vtasks_tasks_processed_total", task_name=task, queue="default", status=status
    )


def test_the_tree_serves_counters_that_match_the_tasks_it_ran(alias, tmp_path):
    port = free_port()
    config = tmp_path / "vtasks.yml"
    config.write_text(
        textwrap.dedent(f"""\
            backend: {alias}
            heartbeat_interval: 0.5
            alive_threshold: 3
            shutdown_timeout: 3
            metrics: {{address: 127.0.0.1, port: {port}}}
            workers:
              - {{name: w, queues: [default], concurrency: 4, processes: 2}}
            """)
    )
    enqueue_mix(alias, tmp_path)
    with supervisor(config, log=tmp_path / "sup.log") as sup:
        # Depths and the process table are sampled every few seconds: a sample taken while a
        # retry still waited shows it queued until the next one.
        wait_for(
            lambda: value(scraped(port), "vtasks_dead_letters_total") == 4
            and value(scraped(port), "vtasks_processes", kind="worker") == 2
            and value(scraped(port), "vtasks_queue_depth", queue="default") == 0,
            timeout=30, what="the tasks to run and the depths and process table to be sampled",
        )  # fmt: skip
        samples = scrape(port)
        assert processed(samples, "tests.tasks.record", "SUCCESSFUL") == 10
        assert processed(samples, "tests.tasks.flaky", "READY") == 3
        assert processed(samples, "tests.tasks.flaky", "SUCCESSFUL") == 3
        assert processed(samples, "tests.tasks.fail", "FAILED") == 4
        assert value(samples, "vtasks_task_retries_total") == 3
        duration = ("vtasks_task_duration_seconds_count", "tests.tasks.record")
        assert value(samples, duration[0], task_name=duration[1], queue="default") == 10
        # 17 first attempts, wherever they ran.
        assert value(samples, "vtasks_claim_latency_seconds_count", queue="default") == 17
        assert value(samples, "vtasks_queue_depth", queue="default") == 0
        assert value(samples, "vtasks_active_tasks", queue="default") == 0
        status, body = healthz(port)
        assert (status, body) == (200, {"healthy": True, "problems": []})

        # A killed worker's counts stay (its sample files are kept); the restart is counted.
        rows = task_backends[alias].processes()
        victim = next(row["pid"] for row in rows if row["kind"] == "worker")
        assert parent_of(victim) == sup.pid
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: value(scraped(port), "vtasks_child_restarts_total", kind="worker") == 1,
            timeout=15, what="the restart to be counted",
        )  # fmt: skip
        samples = scrape(port)
        assert processed(samples, "tests.tasks.record", "SUCCESSFUL") == 10
        assert value(samples, "vtasks_dead_letters_total") == 4
        metrics_dir = sample_dir(sup.pid)
        assert metrics_dir is not None and Path(metrics_dir).is_dir()
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(timeout=20) == 0
    assert not Path(metrics_dir).exists()  # the supervisor removed its sample directory
    assert sorted(lines(tmp_path / "done"), key=int) == [str(i) for i in range(10)]


def sample_dir(pid: int) -> str | None:
    """The sample directory of the tree: the supervisor maps its own sample files from there."""
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        if "/vtasks-metrics-" in line and line.endswith(".db"):
            return os.path.dirname(line.split()[-1])
    return None


def test_a_lone_worker_serves_its_own_metrics(alias, tmp_path):
    port = free_port()
    enqueue_mix(alias, tmp_path)
    worker = spawn_worker(alias, "--metrics-port", str(port), log=tmp_path / "worker.log")
    try:
        wait_for(
            lambda: value(scraped(port), "vtasks_dead_letters_total") == 4,
            timeout=30, what="the tasks to run",
        )  # fmt: skip
        samples = scrape(port)
        assert processed(samples, "tests.tasks.record", "SUCCESSFUL") == 10
        assert processed(samples, "tests.tasks.flaky", "READY") == 3
        assert value(samples, "vtasks_task_retries_total") == 3
        wait_for(
            lambda: value(scraped(port), "vtasks_processes", kind="worker") >= 1,
            timeout=10, what="the process table to be sampled",
        )  # fmt: skip
        assert healthz(port)[0] == 200
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0


def test_manage_py_runworker_takes_metrics_port(tmp_path):
    from tests.helpers import ROOT

    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}
    command = ["django-admin", "runworker", "--backend", "default", "--metrics-port", str(port)]
    proc = subprocess.Popen(
        [os.path.join(os.path.dirname(os.sys.executable), command[0]), *command[1:]],
        env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(lambda: bool(scraped(port)), timeout=20, what="the endpoint")
        assert ("vtasks_task_retries_total", ()) in scrape(port)
        # Registered: its SIGTERM handler is in place (the endpoint binds before it).
        wait_for(
            lambda: any(row["pid"] == proc.pid for row in task_backends["default"].processes()),
            timeout=20, what="the worker's process row",
        )  # fmt: skip
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


def test_log_tasks_writes_one_json_line_per_task_event(tmp_path):
    alias = next(storage_for("default"))
    config = tmp_path / "vtasks.yml"
    config.write_text(
        textwrap.dedent(f"""\
            backend: {alias}
            shutdown_timeout: 3
            log_tasks: true
            log_format: json
            workers:
              - {{name: w, queues: [default], concurrency: 2, processes: 1}}
            """)
    )
    log = tmp_path / "sup.log"
    done = tasks.record.using(backend=alias).enqueue(str(tmp_path / "done"), "x")
    tasks.fail.using(backend=alias).enqueue()
    with supervisor(config, log=log) as sup:
        wait_for(lambda: len(task_events(log)) >= 4, timeout=20, what="four task events")
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(timeout=20) == 0
    events = task_events(log)
    assert sorted(e["event"] for e in events) == ["dead", "finished", "started", "started"]
    finished = next(e for e in events if e["event"] == "finished")
    assert finished["task_id"] == done.id and finished["task_name"] == "tests.tasks.record"
    assert finished["queue"] == "default" and finished["attempt"] == 1
    assert finished["duration"] >= 0


def task_events(log: Path) -> list[dict]:
    events = []
    for line in log.read_text().splitlines() if log.exists() else []:
        if line.startswith("{") and '"event"' in line:
            events.append(json.loads(line))
    return events
