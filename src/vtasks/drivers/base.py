"""The async storage protocol the runtime speaks, and the values that cross it.

A driver stores task records and process rows. The worker claims records under a lease (the claiming
process id plus the attempt number as a fencing token), runs them, and finishes them in batches; a
finish whose fence no longer matches is refused, so a process whose claim was released can never
finalize a task twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple, Protocol

READY, RUNNING, SUCCESSFUL, FAILED = "READY", "RUNNING", "SUCCESSFUL", "FAILED"
FinalStatus = Literal["SUCCESSFUL", "FAILED", "READY"]


# Claim and Outcome are built once per task on the worker's hot path; a frozen dataclass's
# __init__ goes through object.__setattr__ per field and costs twice as much. Treat them as values.
# Claim's fields may also be passed in order: ``build_claim`` does, because matching 18 keyword
# arguments costs CPython more than the rest of the construction (~9,500 instructions a claim).
@dataclass(slots=True)
class Claim:
    """A task record claimed by one process for one attempt (``attempt`` is the fencing token)."""

    id: str
    task_path: str
    queue_name: str
    priority: int
    args: list[Any]
    kwargs: dict[str, Any]
    backend: str
    run_after: datetime | None
    enqueued_at: datetime
    started_at: datetime
    last_attempted_at: datetime
    attempt: int
    max_attempts: int
    worker_ids: list[str]
    #: Earlier attempts' errors: ``{"exception_class_path": ..., "traceback": ...}``.
    errors: list[dict[str, str]]
    unique_key: str | None = None
    #: Per-call options stored at enqueue (``timeout``, ``result_ttl``).
    options: dict[str, Any] = field(default_factory=dict)
    #: Why the stored call could not be decoded; the executor fails such a claim with the reason.
    problem: str | None = None


class ClaimRef(NamedTuple):
    """A claim known by its record only: enough to hand it back (``id``, queue, fencing attempt)."""

    id: str
    queue_name: str
    attempt: int


@dataclass(slots=True)
class Outcome:
    """How one attempt ended: SUCCESSFUL, FAILED (final), or READY again at ``retry_at``."""

    claim: Claim
    status: FinalStatus
    finished_at: datetime
    #: JSON text of the return value (SUCCESSFUL only).
    return_value: str | None = None
    #: The attempt's error (FAILED or READY).
    error: dict[str, str] | None = None
    retry_at: datetime | None = None
    #: When the finished record may be deleted; ``None`` keeps it, equal to ``finished_at`` drops it.
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessInfo:
    id: str
    kind: str
    hostname: str
    pid: int
    queues: Sequence[str] = ()
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class Recovered:
    """What ``recover_dead`` did: pruned process ids and the task ids released or failed."""

    processes: list[str]
    requeued: list[str]
    failed: list[str]


class Driver(Protocol):
    """Storage as the worker sees it. Every method is a coroutine and safe to call concurrently."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def claim(self, queues: Sequence[str], limit: int, process_id: str) -> list[Claim]:
        """Claim up to ``limit`` due READY records: queues in the given order, then priority, then FIFO."""
        ...

    async def claim_by_priority(
        self, queues: Sequence[str], limit: int, process_id: str
    ) -> list[Claim]:
        """Claim up to ``limit`` due READY records of ``queues`` taken as one pool: highest
        priority first across them, then FIFO (the queues a selector such as ``"email*"``
        matches). Returned in that order."""
        ...

    async def known_queues(self) -> list[str]:
        """Names of the queues that may hold READY records, for resolving queue selectors.

        Called every few seconds by a worker whose queue list has selectors, never per claim:
        it must stay cheap on a big table (an index skip scan, or a set kept at enqueue)."""
        ...

    async def finish(self, outcomes: Sequence[Outcome], process_id: str) -> list[str]:
        """Record outcomes in one batch; return the ids refused because their fence no longer holds."""
        ...

    async def held_by(self, process_id: str, queues: Sequence[str]) -> list[ClaimRef]:
        """The RUNNING records of ``queues`` claimed by ``process_id``. A worker asks after a claim
        whose reply it lost (the store may have claimed for it): what it does not know is handed
        back, or it would stay claimed by a live process that never runs it."""
        ...

    async def hand_back(self, claims: Sequence[Claim | ClaimRef], process_id: str) -> None:
        """Return unstarted or unfinished claims to READY without counting a failure (shutdown)."""
        ...

    async def defer(self, claims: Sequence[Claim], process_id: str, until: datetime) -> None:
        """Return claims to READY at ``until`` as if never claimed: the attempt is not counted
        (attempts, worker ids and start times as before the claim). Fenced like ``hand_back``."""
        ...

    async def expedite(self, tasks: Sequence[tuple[str, str]], at: datetime) -> None:
        """Make the READY ``(task_id, queue_name)`` records due by ``at`` (deferred ones whose
        key has room again); other records are left alone."""
        ...

    async def acquire_slots(
        self, requests: Sequence[tuple[str, str, int]], process_id: str
    ) -> list[bool]:
        """Take one slot of each ``(task_id, key, limit)`` for ``process_id``: whether each got
        one (a key holds at most ``limit``). A task already holding its key's slot gets ``True``."""
        ...

    async def release_slots(self, slots: Sequence[tuple[str, str]], process_id: str) -> None:
        """Free the ``(task_id, key)`` slots ``process_id`` holds (others' are left alone)."""
        ...

    async def next_due(self, queues: Sequence[str]) -> datetime | None:
        """When the earliest READY record of these queues becomes due (``None``: none queued)."""
        ...

    async def wait_for_work(self, queues: Sequence[str], timeout: float) -> None:
        """Return when work may have arrived (a notification) or after ``timeout`` seconds."""
        ...

    async def register(self, info: ProcessInfo) -> None: ...

    async def heartbeat(self, process_id: str) -> bool:
        """Refresh the process row; ``False`` when the row is gone (the process was pruned)."""
        ...

    async def deregister(self, process_id: str) -> None: ...

    async def recover_dead(self, alive_threshold: float) -> Recovered:
        """Prune processes silent for ``alive_threshold`` seconds and release their claims.

        Each released claim counts as a failed attempt with ``WorkerLost``: READY again while
        attempts remain, FAILED otherwise.
        The concurrency slots of processes that are not alive are freed too.
        """
        ...
