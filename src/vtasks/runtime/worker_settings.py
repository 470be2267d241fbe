"""What a ``Worker`` is given: its settings, the executor that runs its claims, and the observer
told about them (metrics, the task log). Kept apart from the worker so that the supervisor's
topology and the launchers can name them without importing the worker itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from vtasks.drivers.base import Claim, Outcome
from vtasks.runtime.batches import BatchQueue


class Executor(Protocol):
    async def run(self, claim: Claim) -> Outcome: ...

    def start(
        self,
        claim: Claim,
        hand_over: bool = False,
        then: Callable[[asyncio.Future[Outcome]], None] | None = None,
    ) -> asyncio.Future[Outcome] | None:
        """``claim`` started without a coroutine when it can be (its outcome's future), else
        ``None`` (then the worker awaits ``run``). ``hand_over``: the worker had nothing else
        running, so its loop may wait for the attempt's thread to begin. ``then(future)``: called
        on the loop once the future has its outcome or error (never when it is cancelled)."""
        ...

    async def run_batch(self, claims: list[Claim]) -> list[Outcome]: ...

    def refuse(self, claim: Claim, exc: Exception) -> Outcome:
        """A FAILED outcome for a claim that is not run (``exc`` says why)."""
        ...


class Observer(Protocol):
    """Metrics and the task log (``vtasks.observability``): told per batch, never per task."""

    def claimed(self, claims: Sequence[Claim]) -> None: ...

    def finished(self, outcomes: Sequence[Outcome]) -> None: ...

    def running(self, claims: Iterable[Claim]) -> None: ...

    def recovered(self, requeued: int, failed: int) -> None: ...

    def loop_blocked(self, task_name: str) -> None: ...  # from the watchdog thread (loopwatch)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSettings:
    queues: Sequence[str] = ("default",)
    concurrency: int = 10
    burst: bool = False
    heartbeat_interval: float = 5.0
    alive_threshold: float = 30.0
    shutdown_timeout: float = 30.0
    idle_wait: float = 1.0
    #: Seconds a freed slot waits for others before the next claim (see ``_wait_for_slot``).
    claim_linger: float = 0.002
    #: Claims held ready beyond the free slots, so that a freed slot starts its next task at once
    #: instead of after a claim round trip. Adaptive: at most as many as finished in the last
    #: ``prefetch_window`` seconds (short tasks get a deep buffer, long ones next to none), and
    #: never more than this (0: none; ``None``: the concurrency, at least 100). Held claims are
    #: leased like running ones. Scaled with the concurrency, a worker running 1,000 short sleeps
    #: at once starts the next ones as slots free instead of waiting for a claim of 900.
    prefetch: int | None = None
    prefetch_window: float = 0.1
    #: Batch queues (``runtime.batches``); those among ``queues`` are served a batch at a time.
    batch_queues: Mapping[str, BatchQueue] = field(default_factory=dict)
    #: Seconds a claim whose concurrency key is full waits (READY, holding no worker slot)
    #: before it is claimed again.
    blocked_delay: float = 0.25
    #: Seconds between re-reads of the store's queues when ``queues`` has selectors (``"*"``,
    #: ``"email*"``): a new queue is served within this. Not read for plain names.
    selector_refresh: float = 2.0
    #: Seconds the event loop may be blocked before a warning names the task (0: not watched).
    loop_block_threshold: float = 1.0

    @property
    def prefetch_cap(self) -> int:
        return self.prefetch if self.prefetch is not None else max(100, self.concurrency)
