"""A worker's loop for one batch queue (``runtime.batches``): collect up to ``count`` claims,
waiting at most ``timeout`` after the first, run them as one batch, repeat.

The claims stay under the worker's lease while they collect and run, so a kill loses none.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING

from vtasks.drivers.base import Claim
from vtasks.runtime.admission import admit_claims, limited
from vtasks.runtime.batches import BatchQueue

if TYPE_CHECKING:
    from vtasks.runtime.worker import Worker

logger = logging.getLogger("vtasks.worker")


class BatchLoop:
    """One batch per queue at a time; run as a task beside the worker's claim loop."""

    def __init__(self, worker: Worker, queue: str, batch: BatchQueue) -> None:
        self.worker = worker
        self.queue = queue
        self.batch = batch

    async def run(self) -> None:
        """Collect up to ``batch.count`` claims of ``queue`` (waiting at most ``batch.timeout``
        after the first), run them as one batch, repeat. One batch per queue at a time."""
        worker, queue, batch = self.worker, self.queue, self.batch
        loop = asyncio.get_running_loop()
        held: list[Claim] = []
        unadmitted: list[Claim] = []
        deadline = 0.0
        failures = 0
        try:
            while not worker._stopping.is_set():
                if len(held) < batch.count:
                    try:
                        claims = await worker.driver.claim(
                            [queue], batch.count - len(held), worker.process_id
                        )
                    except Exception:
                        failures += 1
                        logger.exception("vtasks: claim from batch queue %r failed", queue)
                        await worker._pause(min(5.0, 0.1 * 2**failures))
                        continue
                    failures = 0
                    if claims and worker.observer is not None:
                        worker.observer.claimed(claims)
                    if unadmitted or (claims and limited(claims)):
                        claims = await admit_claims(worker, claims, unadmitted)
                    if claims and not held:
                        deadline = loop.time() + batch.timeout
                    held += claims
                    if claims and len(held) < batch.count:
                        continue  # more may be there already
                full = len(held) >= batch.count
                if held and (full or loop.time() >= deadline or worker.settings.burst):
                    claims, held = held, []
                    await self._run_batch(claims)
                    continue
                if not held and worker.settings.burst:
                    await (
                        worker.recorder.flush()
                    )  # a retry must be stored before the queue looks empty
                    due = await worker.driver.next_due([queue])
                    if due is None:
                        return
                    await worker._wait_for_work_or(
                        worker._stopping, [queue], (due - _now(due)).total_seconds()
                    )
                    continue
                wait = deadline - loop.time() if held else worker.settings.idle_wait
                await worker._wait_for_work_or(worker._stopping, [queue], wait)
        finally:
            held += unadmitted
            if held and not worker._fenced_out:
                await asyncio.shield(worker._hand_back(held))

    async def _run_batch(self, claims: list[Claim]) -> None:
        worker = self.worker
        try:
            outcomes = await worker.executor.run_batch(claims)
        except asyncio.CancelledError:
            # Shutdown ran out of time mid-batch: its messages go back, as unfinished tasks do.
            if not worker._fenced_out:
                worker.handed_back += len(claims)
                await asyncio.shield(worker._hand_back(claims))
            raise
        except Exception:
            logger.exception(
                "vtasks: executor failed on a batch of %d; handing it back", len(claims)
            )
            await worker._hand_back(claims)
            return
        worker.recorder.extend(outcomes)
        worker.processed += len(outcomes)


def _now(like: datetime) -> datetime:
    return datetime.now(like.tzinfo)
