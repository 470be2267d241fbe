"""The validated topology turned into what the supervisor forks: one ``ChildSpec`` per process. Pure."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from vtasks.config.models import Topology
from vtasks.runtime.batches import BatchQueue
from vtasks.runtime.worker_settings import WorkerSettings

#: The health file in the metric sample directory when the topology names none.
HEALTH_NAME = "health.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsEndpoint:
    """Where the tree's ``/metrics`` and ``/healthz`` are served, and what feeds them."""

    address: str
    port: int
    #: Seconds between samples of the queue depths and the process table.
    sample_interval: float
    #: The supervisor's health file ``/healthz`` judges, stale after ``health_max_age`` seconds.
    health_file: str
    health_max_age: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildSpec:
    """One child process slot: ``name`` is ``pool.index`` (stable across restarts of the slot)."""

    name: str
    pool: str
    index: int
    kind: str
    backend: str
    worker: WorkerSettings
    #: A scheduler child's YAML ``scheduler.schedules``, as plain entries by name (they win over
    #: ``VTASKS_SCHEDULE``; the child applies ``TIME_ZONE``, which only Django knows).
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Set when the tree records metrics: a worker records, the ``metrics`` child serves them.
    metrics: MetricsEndpoint | None = None
    #: A worker logs one line per task event (``vtasks.observability.tasklog``).
    log_tasks: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class SupervisorSettings:
    #: Children get this long to drain after TERM; the supervisor waits it plus ``kill_margin``.
    shutdown_timeout: float
    #: Time for a child to hand back its claims and close its driver after its own drain.
    kill_margin: float = 5.0
    #: The first restart of a crashed slot waits this long, doubling per crash up to ``backoff_cap``.
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    #: A child that ran this long before dying starts its slot's back-off afresh.
    stable_after: float = 30.0
    #: Children exit 0 once their queues are empty and are not restarted; the supervisor then exits.
    burst: bool = False
    #: Rewritten every second with the tree's state (``vtasks.observability.health``).
    health_file: str | None = None
    #: Seconds between heartbeats of the supervisor's own process-table row.
    heartbeat_interval: float = 5.0
    #: A child that has not reported itself up this long after its start counts as up anyway (a
    #: reload moves on, ``READY=1`` is sent); one that keeps crashing never does.
    ready_timeout: float = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """What a (re)loaded configuration asks the supervisor to run."""

    specs: tuple[ChildSpec, ...]
    settings: SupervisorSettings


def child_specs(
    topology: Topology, *, burst: bool = False, metrics: MetricsEndpoint | None = None
) -> tuple[ChildSpec, ...]:
    """One spec per worker process of every pool, in file order (then the scheduler and the
    metrics exporter, when configured)."""
    specs = []
    pools = topology.workers if topology.roles != "schedule" else ()
    for pool in pools:
        settings = WorkerSettings(
            queues=pool.queues,
            concurrency=pool.concurrency,
            burst=burst,
            heartbeat_interval=topology.heartbeat_interval,
            alive_threshold=topology.alive_threshold,
            shutdown_timeout=topology.shutdown_timeout,
            prefetch=pool.prefetch,
            loop_block_threshold=topology.loop_block_threshold,
            batch_queues={
                queue: BatchQueue(count=b.count, timeout=b.timeout)
                for queue, b in pool.batch.items()
            },
        )
        for index in range(1, pool.processes + 1):
            specs.append(
                ChildSpec(
                    name=f"{pool.name}.{index}",
                    pool=pool.name,
                    index=index,
                    kind="worker",
                    backend=topology.backend,
                    worker=settings,
                    metrics=metrics,
                    log_tasks=topology.log_tasks,
                )  # fmt: skip
            )
    scheduling = topology.roles == "schedule" or (
        topology.scheduler.enabled and topology.roles == "all"
    )
    if scheduling and not burst:
        # One scheduler child per supervisor: several supervisors (machines) may each run one,
        # since the backend admits every slot once. A burst run has no end for it: none then.
        specs.append(
            ChildSpec(
                name="scheduler",
                pool="scheduler",
                index=1,
                kind="scheduler",
                backend=topology.backend,
                worker=WorkerSettings(),
                schedules=topology.scheduler.entries(),
            )  # fmt: skip
        )
    if metrics is not None:
        # A child, not a thread of the supervisor: no thread or listening socket may be there
        # when it forks, and a wedged scrape or database sample cannot stall the main loop.
        specs.append(
            ChildSpec(
                name="metrics",
                pool="metrics",
                index=1,
                kind="metrics",
                backend=topology.backend,
                worker=WorkerSettings(),
                metrics=metrics,
            )  # fmt: skip
        )
    return tuple(specs)


def metrics_endpoint(
    topology: Topology, metrics_dir: str | None, *, burst: bool = False
) -> MetricsEndpoint | None:
    """The tree's endpoint: ``None`` without ``metrics:``, a sample directory, or in burst mode
    (an exporter would never finish, so the tree would not either)."""
    if topology.metrics is None or metrics_dir is None or burst:
        return None
    return MetricsEndpoint(
        address=topology.metrics.address, port=topology.metrics.port,
        sample_interval=topology.heartbeat_interval,
        health_file=health_file(topology, metrics_dir) or "",
        health_max_age=topology.alive_threshold,
    )  # fmt: skip


def health_file(topology: Topology, metrics_dir: str | None = None) -> str | None:
    """The topology's health file; with metrics on and none named, one in the sample directory
    (``/healthz`` reads it)."""
    if topology.health_file:
        return str(topology.health_file)
    if topology.metrics is not None and metrics_dir is not None:
        return os.path.join(metrics_dir, HEALTH_NAME)
    return None


def supervisor_settings(
    topology: Topology, *, burst: bool = False, metrics_dir: str | None = None
) -> SupervisorSettings:
    health_file_ = health_file(topology, metrics_dir)
    return SupervisorSettings(
        shutdown_timeout=topology.shutdown_timeout, burst=burst, health_file=health_file_,
        heartbeat_interval=topology.heartbeat_interval,
    )  # fmt: skip


def plan(topology: Topology, *, burst: bool = False, metrics_dir: str | None = None) -> Plan:
    """``metrics_dir``: the tree's metric sample directory, when metrics are on."""
    endpoint = metrics_endpoint(topology, metrics_dir, burst=burst)
    return Plan(
        specs=child_specs(topology, burst=burst, metrics=endpoint),
        settings=supervisor_settings(topology, burst=burst, metrics_dir=metrics_dir),
    )
