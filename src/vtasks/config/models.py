"""The validated topology: what ``vtasks supervise`` runs. Frozen, and unknown keys are errors.

Pydantic lives only here, at the config boundary; the runtime receives plain values from
``vtasks.runtime.topology``. A typo in a key (``concurency``) must fail loudly, not fall back to a
default, hence ``extra="forbid"`` everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from vtasks.config.env import (
    ALIVE_THRESHOLD,
    DEFAULT_CONCURRENCY,
    HEARTBEAT_INTERVAL,
    LOOP_BLOCK_THRESHOLD,
    RUNTIME_DEFAULTS,
    SHUTDOWN_TIMEOUT,
)
from vtasks.core.selectors import selector_problem

Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
QueueName = Annotated[str, StringConstraints(min_length=1, max_length=64)]


def _selector(entry: str) -> str:
    problem = selector_problem(entry)
    if problem:
        raise ValueError(problem)
    return entry


#: A queue name, or a selector: ``"*"`` (every queue) or a prefix such as ``"email*"``.
QueueSelector = Annotated[QueueName, AfterValidator(_selector)]

DEFAULT_QUEUES: tuple[str, ...] = ("default",)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Batch(_Frozen):
    """A batch queue's collection: up to ``count`` messages, or ``timeout`` seconds after the first."""

    count: int = Field(default=100, ge=1)
    timeout: float = Field(default=5.0, ge=0)


class Pool(_Frozen):
    """A group of identical worker processes serving ``queues`` in the listed (claim) order.

    An entry may be a selector (``"*"``, ``"email*"``): the queues it matches, claimed together
    by priority at its place in the order (``vtasks.core.selectors``)."""

    name: Name
    queues: tuple[QueueSelector, ...]
    concurrency: int = Field(ge=1)
    processes: int = Field(default=1, ge=1)
    #: Claims held beyond the free slots (adaptive, at most this many; 0: none; unset: the
    #: concurrency, at least 100).
    prefetch: int | None = Field(default=None, ge=0)
    #: Batch queues among ``queues`` (else ``VTASKS_BATCH_QUEUES`` from the settings).
    batch: dict[QueueName, Batch] = Field(default_factory=dict)

    @field_validator("queues")
    @classmethod
    def _queue_list(cls, queues: tuple[str, ...]) -> tuple[str, ...]:
        return _queue_list(queues)

    @field_validator("batch")
    @classmethod
    def _batch_queues_are_served(cls, batch: dict[str, Batch], info: Any) -> dict[str, Batch]:
        stray = [queue for queue in batch if queue not in (info.data.get("queues") or ())]
        if stray:
            raise ValueError(f"batch queues must be among the pool's queues, got {stray}")
        return batch


class ScheduleEntry(_Frozen):
    """One recurring task, as in ``VTASKS_SCHEDULE``: ``schedule`` is a cron expression (5 fields,
    or 6 with seconds last) or seconds between slots."""

    task: Annotated[str, StringConstraints(min_length=1, pattern=r"^[A-Za-z_][\w.]*$")]
    schedule: str | float
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = Field(default_factory=dict)
    queue_name: QueueName | None = None
    priority: int | None = Field(default=None, ge=-100, le=100)
    #: Default: the Django setting ``TIME_ZONE``.
    time_zone: str | None = None
    #: After downtime: fire the latest missed slot once ("once"), or only future slots ("skip").
    catch_up: Literal["once", "skip"] = "once"

    @field_validator("schedule")
    @classmethod
    def _when(cls, value: str | float) -> str | float:
        if isinstance(value, str):
            from croniter import croniter

            if not croniter.is_valid(value):
                raise ValueError(f"must be a cron expression or seconds, got {value!r}")
        elif not value > 0:
            raise ValueError(f"must be more than 0 seconds, got {value!r}")
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        from zoneinfo import ZoneInfo

        try:
            if value is not None:
                ZoneInfo(value)
        except Exception:
            raise ValueError(f"must be an IANA time zone name, got {value!r}") from None
        return value


class Scheduler(_Frozen):
    """``enabled``: the supervisor runs one scheduler child for ``VTASKS_SCHEDULE`` and
    ``schedules`` (these win over ``VTASKS_SCHEDULE`` entries of the same name)."""

    enabled: bool = False
    schedules: dict[Name, ScheduleEntry] = Field(default_factory=dict)

    def entries(self) -> dict[str, dict[str, Any]]:
        """``schedules`` as plain ``VTASKS_SCHEDULE``-style entries, unset keys left out."""
        return {name: entry.model_dump(exclude_none=True) for name, entry in self.schedules.items()}


class Metrics(_Frozen):
    """The supervisor's ``/metrics`` and ``/healthz`` endpoint (needs ``vtasks[metrics]``)."""

    address: str = "127.0.0.1"
    port: int = Field(default=9808, ge=1, le=65535)


class Topology(_Frozen):
    """The whole supervisor configuration.

    ``queues`` and ``concurrency`` at the top are the defaults of a pool that omits them, and make
    up the single pool ``default`` when ``workers`` is not given (so ``VTASKS_QUEUES`` and
    ``VTASKS_CONCURRENCY`` alone describe a simple deployment).
    """

    django_settings: str | None = None
    backend: str = Field(default="default", min_length=1)
    heartbeat_interval: float = Field(
        default=RUNTIME_DEFAULTS[HEARTBEAT_INTERVAL][0], ge=RUNTIME_DEFAULTS[HEARTBEAT_INTERVAL][1]
    )
    alive_threshold: float = Field(
        default=RUNTIME_DEFAULTS[ALIVE_THRESHOLD][0], ge=RUNTIME_DEFAULTS[ALIVE_THRESHOLD][1]
    )
    shutdown_timeout: float = Field(
        default=RUNTIME_DEFAULTS[SHUTDOWN_TIMEOUT][0], ge=RUNTIME_DEFAULTS[SHUTDOWN_TIMEOUT][1]
    )
    #: Seconds a worker's event loop may be blocked (an ``async def`` task that sleeps or computes)
    #: before a warning names the task, with the loop's stack (``runtime.loopwatch``); 0: off.
    loop_block_threshold: float = Field(
        default=RUNTIME_DEFAULTS[LOOP_BLOCK_THRESHOLD][0],
        ge=RUNTIME_DEFAULTS[LOOP_BLOCK_THRESHOLD][1],
    )
    queues: tuple[QueueSelector, ...] = DEFAULT_QUEUES
    concurrency: int = Field(default=DEFAULT_CONCURRENCY, ge=1)
    workers: tuple[Pool, ...] = ()
    #: What this supervisor runs: ``all`` (the worker pools, and the scheduler when enabled),
    #: ``work`` (the pools only) or ``schedule`` (the scheduler only, enabled or not). With it,
    #: one full node and several worker-only nodes share one configuration file.
    roles: Literal["all", "work", "schedule"] = "all"
    #: ``fork``: the supervisor forks a child per worker process (and the scheduler, metrics).
    #: ``async``: every role as asyncio tasks of one process, for small machines
    #: (``vtasks.asyncmode``; no SIGHUP reload).
    mode: Literal["fork", "async"] = "fork"
    scheduler: Scheduler = Scheduler()
    metrics: Metrics | None = None
    health_file: Path | None = None
    log_format: Literal["text", "json"] = "text"
    #: One log line per task event (enqueued, started, finished, retried, dead) from the workers.
    log_tasks: bool = False

    @field_validator("queues")
    @classmethod
    def _queue_list(cls, queues: tuple[str, ...]) -> tuple[str, ...]:
        return _queue_list(queues)

    @field_validator("workers")
    @classmethod
    def _some_pool(cls, workers: tuple[Pool, ...]) -> tuple[Pool, ...]:
        if not workers:
            raise ValueError("must list at least one pool, got []")
        return workers

    @model_validator(mode="before")
    @classmethod
    def _fill_pools(cls, data: Any) -> Any:
        """Give pools the top-level ``queues``/``concurrency`` they omit; default to one pool."""
        if not isinstance(data, dict):
            return data
        defaults = {
            "queues": data.get("queues", DEFAULT_QUEUES),
            "concurrency": data.get("concurrency", DEFAULT_CONCURRENCY),
        }
        pools = data.get("workers")
        if pools is None:
            return {**data, "workers": [{"name": "default", **defaults}]}
        if isinstance(pools, list | tuple):
            filled = [{**defaults, **p} if isinstance(p, dict) else p for p in pools]
            return {**data, "workers": filled}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Topology:
        if self.alive_threshold <= self.heartbeat_interval:
            raise ValueError(
                f"alive_threshold ({self.alive_threshold}) must be greater than "
                f"heartbeat_interval ({self.heartbeat_interval}), or live processes look dead"
            )
        names = [pool.name for pool in self.workers]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"pool names must be distinct, got {duplicates} more than once")
        return self


def _queue_list(queues: tuple[str, ...]) -> tuple[str, ...]:
    # Checked after the items (not with min_length), so a bad item is not also reported as a
    # too-short list: pydantic counts only the items that validated.
    if not queues:
        raise ValueError("must list at least one queue, got []")
    if len(set(queues)) != len(queues):
        raise ValueError(f"must list each queue once, got {list(queues)}")
    return queues


def known_keys() -> set[str]:
    """Every key the topology accepts, at any depth: the vocabulary for "did you mean" hints."""
    keys: set[str] = set()
    for model in (Topology, Pool, Scheduler, ScheduleEntry, Metrics):
        keys.update(model.model_fields)
    return keys
