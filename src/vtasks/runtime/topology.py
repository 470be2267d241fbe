"""The validated topology turned into what the supervisor forks: one ``ChildSpec`` per process. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from vtasks.config.models import Topology
from vtasks.runtime.worker import WorkerSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildSpec:
    """One child process slot: ``name`` is ``pool.index`` (stable across restarts of the slot)."""

    name: str
    pool: str
    index: int
    kind: str
    backend: str
    worker: WorkerSettings


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


def child_specs(topology: Topology, *, burst: bool = False) -> tuple[ChildSpec, ...]:
    """One spec per worker process of every pool, in file order."""
    specs = []
    for pool in topology.workers:
        settings = WorkerSettings(
            queues=pool.queues,
            concurrency=pool.concurrency,
            burst=burst,
            heartbeat_interval=topology.heartbeat_interval,
            alive_threshold=topology.alive_threshold,
            shutdown_timeout=topology.shutdown_timeout,
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
                )  # fmt: skip
            )
    if topology.scheduler.enabled and not burst:
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
            )  # fmt: skip
        )
    return tuple(specs)


def supervisor_settings(topology: Topology, *, burst: bool = False) -> SupervisorSettings:
    health_file = str(topology.health_file) if topology.health_file else None
    return SupervisorSettings(
        shutdown_timeout=topology.shutdown_timeout, burst=burst, health_file=health_file
    )
