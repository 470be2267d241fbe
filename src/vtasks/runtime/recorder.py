"""``OutcomeRecorder``: the worker's finished attempts, recorded in batches.

Outcomes collect while one ``Driver.finish`` is in flight; the next call takes all of them. A
failed call puts its batch back in front and tries again a second later: an outcome is never
dropped while the worker lives. ``flush`` returns only once nothing is pending or in flight, so
a caller may then trust the store (a burst worker before it looks for more work, the drain).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence

from vtasks.drivers.base import Claim, Driver, Outcome
from vtasks.runtime.admission import HeldSlots
from vtasks.runtime.worker_settings import Observer

logger = logging.getLogger("vtasks.worker")


class OutcomeRecorder:
    def __init__(
        self, driver: Driver, process_id: str, slots: HeldSlots,
        release_slots: Callable[[], Awaitable[None]], observer: Observer | None,
        running: Callable[[], Iterable[Claim]],
    ) -> None:  # fmt: skip
        self.driver = driver
        self.process_id = process_id
        #: Concurrency slots held by this worker's claims: freed once their outcomes are stored.
        self._slots = slots
        self._release_slots = release_slots
        self._observer = observer
        self._running = running
        self.pending: list[Outcome] = []
        #: Ids of the outcomes being recorded right now.
        self.recording: set[str] = set()
        self.wanted = asyncio.Event()
        # Held while a batch is being recorded: a second flusher waits for it to land.
        self._lock = asyncio.Lock()

    def add(self, outcome: Outcome) -> None:
        self.pending.append(outcome)
        self.wanted.set()

    def extend(self, outcomes: Iterable[Outcome]) -> None:
        self.pending.extend(outcomes)
        self.wanted.set()

    def ids(self) -> set[str]:
        """The claims whose outcomes are pending or being recorded."""
        return {outcome.claim.id for outcome in self.pending} | self.recording

    async def loop(self, done: Callable[[], bool]) -> None:
        """Record whenever outcomes arrive, until ``done()`` holds with none pending."""
        while True:
            await self.wanted.wait()
            self.wanted.clear()
            await self.flush()
            if done() and not self.pending:
                return

    async def flush(self) -> None:
        """Record pending outcomes; returns only once none is pending or in flight."""
        async with self._lock:
            while self.pending:
                batch, self.pending = self.pending, []
                self.recording = {outcome.claim.id for outcome in batch}
                try:
                    refused = await self.driver.finish(batch, self.process_id)
                except Exception:
                    logger.exception("vtasks: could not record %d outcome(s); retrying", len(batch))
                    self.pending[:0] = batch
                    await asyncio.sleep(1.0)
                    continue
                finally:
                    self.recording = set()
                if refused:
                    logger.warning(
                        "vtasks: %d outcome(s) refused: their claims were released", len(refused)
                    )
                if self._slots.held:
                    self._slots.release_later(outcome.claim for outcome in batch)
                if self._slots.pending:
                    await self._release_slots()
                if self._observer is not None:
                    self._observe(batch, refused)

    def _observe(self, batch: list[Outcome], refused: Sequence[str]) -> None:
        """Metrics for a recorded batch (after ``finish``: a batch retried is counted once)."""
        assert self._observer is not None
        if refused:
            gone = set(refused)
            batch = [outcome for outcome in batch if outcome.claim.id not in gone]
        try:
            self._observer.finished(batch)
            self._observer.running(self._running())
        except Exception:  # metrics must never stop the recording of outcomes
            logger.exception("vtasks: could not record metrics for %d outcome(s)", len(batch))
