"""The validated topology: what ``vtasks supervise`` runs. Frozen, and unknown keys are errors.

Pydantic lives only here, at the config boundary; the runtime receives plain values from
``vtasks.runtime.topology``. A typo in a key (``concurency``) must fail loudly, not fall back to a
default, hence ``extra="forbid"`` everywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from vtasks.config.env import (
    ALIVE_THRESHOLD,
    HEARTBEAT_INTERVAL,
    RUNTIME_DEFAULTS,
    SHUTDOWN_TIMEOUT,
)

Name = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
QueueName = Annotated[str, StringConstraints(min_length=1, max_length=64)]

DEFAULT_QUEUES: tuple[str, ...] = ("default",)
DEFAULT_CONCURRENCY = 10


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Pool(_Frozen):
    """A group of identical worker processes serving ``queues`` in the listed (claim) order."""

    name: Name
    queues: tuple[QueueName, ...]
    concurrency: int = Field(ge=1)
    processes: int = Field(default=1, ge=1)

    @field_validator("queues")
    @classmethod
    def _queue_list(cls, queues: tuple[str, ...]) -> tuple[str, ...]:
        return _queue_list(queues)


class Scheduler(_Frozen):
    """``enabled``: the supervisor runs one scheduler child for ``VTASKS_SCHEDULE``."""

    enabled: bool = False


class Metrics(_Frozen):
    # Validated only: the /metrics exporter is a later issue.
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
    queues: tuple[QueueName, ...] = DEFAULT_QUEUES
    concurrency: int = Field(default=DEFAULT_CONCURRENCY, ge=1)
    workers: tuple[Pool, ...] = ()
    scheduler: Scheduler = Scheduler()
    metrics: Metrics | None = None
    health_file: Path | None = None
    log_format: Literal["text", "json"] = "text"

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
    for model in (Topology, Pool, Scheduler, Metrics):
        keys.update(model.model_fields)
    return keys
