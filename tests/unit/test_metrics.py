"""The metrics recorded per batch equal what per-task recording would give; the supervisor's and
the topology's side of metrics."""

from __future__ import annotations

import random
import signal
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, Histogram

from tests.unit.test_supervisor import World, make, spec
from vtasks.config.models import Topology
from vtasks.drivers.base import Claim, Outcome
from vtasks.observability import metrics
from vtasks.runtime.topology import plan

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def claim(task: str = "app.tasks.a", queue: str = "default", *, attempt: int = 1,
          waited: float = 0.5, run_after: datetime | None = None) -> Claim:  # fmt: skip
    started = T0 + timedelta(seconds=waited)
    return Claim(
        id=str(random.random()), task_path=task, queue_name=queue, priority=0, args=[], kwargs={},
        backend="default", run_after=run_after, enqueued_at=T0, started_at=started,
        last_attempted_at=started, attempt=attempt, max_attempts=3, worker_ids=[], errors=[],
    )  # fmt: skip


def outcome(c: Claim, status: str = "SUCCESSFUL", took: float = 0.002) -> Outcome:
    return Outcome(
        claim=c, status=status,  # type: ignore[arg-type]
        finished_at=c.last_attempted_at + timedelta(seconds=took),
    )  # fmt: skip


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_a_batch_is_counted_per_label_set_and_status():
    registry = CollectorRegistry()
    observer = metrics.WorkerMetrics(registry)
    batch = [outcome(claim()) for _ in range(5)]
    batch += [outcome(claim("app.tasks.b", "mail"), "READY"), outcome(claim("app.tasks.b", "mail"))]
    batch += [outcome(claim("app.tasks.b", "mail", attempt=2), "FAILED")]
    observer.finished(batch)
    observer.finished([outcome(claim())])
    processed = "vtasks_tasks_processed_total"
    assert sample(registry, processed, task_name="app.tasks.a", queue="default",
                  status="SUCCESSFUL") == 6  # fmt: skip
    assert sample(registry, processed, task_name="app.tasks.b", queue="mail", status="READY") == 1
    assert sample(registry, processed, task_name="app.tasks.b", queue="mail", status="FAILED") == 1
    assert sample(registry, "vtasks_task_retries_total") == 1
    assert sample(registry, "vtasks_dead_letters_total") == 1
    # The second attempt is not a claim latency: its wait was the retry's delay.
    assert sample(registry, "vtasks_claim_latency_seconds_count", queue="mail") == 2
    assert sample(registry, "vtasks_task_duration_seconds_count", task_name="app.tasks.b",
                  queue="mail") == 3  # fmt: skip


def test_bucketed_histograms_equal_observe_one_by_one():
    registry, reference = CollectorRegistry(), CollectorRegistry()
    observer = metrics.WorkerMetrics(registry)
    plain = Histogram("vtasks_task_duration_seconds", "", ("task_name", "queue"),
                      buckets=metrics.DURATION_BUCKETS, registry=reference)  # fmt: skip
    rng = random.Random(7)
    durations = [rng.choice([0.0, 0.0005, 0.001, 0.3, 2.5, 400.0, rng.random() * 20])
                 for _ in range(300)]  # fmt: skip
    observer.finished([outcome(claim(), took=d) for d in durations])
    for d in durations:
        plain.labels("app.tasks.a", "default").observe(d)
    ours, theirs = histogram(registry), histogram(reference)
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert abs(ours[key] - theirs[key]) < 1e-6, key


def histogram(registry: CollectorRegistry) -> dict[tuple[str, str | None], float]:
    return {
        (s.name, s.labels.get("le")): s.value
        for f in registry.collect()
        for s in f.samples
        if f.name == "vtasks_task_duration_seconds" and not s.name.endswith("_created")
    }


def test_claim_latency_counts_from_run_after_when_later():
    registry = CollectorRegistry()
    observer = metrics.WorkerMetrics(registry)
    late = claim(waited=10.0, run_after=T0 + timedelta(seconds=9.99))
    observer.finished([outcome(late)])
    assert abs(sample(registry, "vtasks_claim_latency_seconds_sum", queue="default") - 0.01) < 1e-6


def test_running_sets_per_queue_gauges_and_drops_idle_queues_to_zero():
    registry = CollectorRegistry()
    observer = metrics.WorkerMetrics(registry)
    observer.running([claim(queue="a"), claim(queue="a"), claim(queue="b")])
    assert sample(registry, "vtasks_active_tasks", queue="a") == 2
    observer.running([claim(queue="b")])
    assert sample(registry, "vtasks_active_tasks", queue="a") == 0
    assert sample(registry, "vtasks_active_tasks", queue="b") == 1


def test_sampled_depths_and_process_counts():
    registry = CollectorRegistry()
    f = metrics.families(registry)
    metrics.record_depths({"a": {"ready": 3, "delayed": 9}, "b": {"ready": 0}}, f)
    metrics.record_processes([{"kind": "worker"}, {"kind": "worker"}, {"kind": "scheduler"}], f)
    assert sample(registry, "vtasks_queue_depth", queue="a") == 3
    assert sample(registry, "vtasks_processes", kind="worker") == 2
    metrics.record_processes([{"kind": "worker"}], f)
    assert sample(registry, "vtasks_processes", kind="scheduler") == 0
    metrics.record_depths({"b": {"ready": 1}}, f)
    assert sample(registry, "vtasks_queue_depth", queue="a") == 0


def test_the_supervisor_tells_its_observer_about_reaps_and_restarts():
    seen: dict[str, list] = {"reaped": [], "restarting": []}

    class Observer:
        def reaped(self, pid: int) -> None:
            seen["reaped"].append(pid)

        def restarting(self, kind: str) -> None:
            seen["restarting"].append(kind)

    world = World()
    supervisor = make(world, n=2)
    supervisor.observer = Observer()
    world.events.append((3.0, lambda: world.kill(100, signal.SIGKILL)))
    world.signal_at(10.0, signal.SIGTERM)
    assert supervisor.run() == 0
    assert seen["restarting"] == [spec("x").kind]
    assert sorted(seen["reaped"]) == [100, 101, 102]


def test_a_topology_with_metrics_gets_an_exporter_child_and_a_health_file():
    topology = Topology.model_validate(
        {
            "metrics": {"port": 9999},
            "workers": [{"name": "w", "queues": ["q"], "concurrency": 2, "processes": 2}],
        }  # fmt: skip
    )
    first = plan(topology, metrics_dir="/tmp/m")
    kinds = [s.kind for s in first.specs]
    assert kinds == ["worker", "worker", "metrics"]
    endpoint = first.specs[-1].metrics
    assert endpoint is not None and (endpoint.address, endpoint.port) == ("127.0.0.1", 9999)
    assert first.settings.health_file == endpoint.health_file == "/tmp/m/health.json"
    assert all(s.metrics == endpoint for s in first.specs)
    assert [s.kind for s in plan(topology, burst=True, metrics_dir="/tmp/m").specs] == [
        "worker"
    ] * 2
    assert all(s.metrics is None for s in plan(topology).specs)  # no sample directory: off


def test_a_lone_worker_takes_its_metrics_port_from_the_flag_or_vtasks_metrics_port():
    from types import SimpleNamespace

    from vtasks.serve import worker_options

    assert worker_options({}, SimpleNamespace(), environ={}).metrics_port is None
    environ = {"VTASKS_METRICS_PORT": "9100"}
    assert worker_options({}, SimpleNamespace(), environ=environ).metrics_port == 9100
    flags = {"metrics_port": 9200, "metrics_address": "0.0.0.0"}
    options = worker_options(flags, SimpleNamespace(), environ=environ)
    assert (options.metrics_port, options.metrics_address) == (9200, "0.0.0.0")


def test_the_task_log_writes_one_line_per_event_with_its_fields(caplog):
    import json
    import logging

    from vtasks.observability.logformat import JsonFormatter
    from vtasks.observability.tasklog import TaskLog, combine

    c = claim("app.tasks.a", "mail", attempt=2)
    log = TaskLog()
    with caplog.at_level(logging.INFO, logger="vtasks.tasks"):
        log.claimed([c])
        log.finished([outcome(c, "READY", took=0.25), outcome(c, "FAILED"), outcome(c)])
    events = [r.vtasks["event"] for r in caplog.records]  # type: ignore[attr-defined]
    assert events == ["started", "retried", "dead", "finished"]
    line = json.loads(JsonFormatter().format(caplog.records[1]))
    assert line["task_name"] == "app.tasks.a" and line["queue"] == "mail"
    assert line["attempt"] == 2 and line["duration"] == 0.25 and line["task_id"] == c.id
    assert "task retried: app.tasks.a" in caplog.records[1].getMessage()
    assert combine(None, None) is None and combine(log) is log
