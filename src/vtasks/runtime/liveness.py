"""A worker's heartbeat: proves the process alive in the process table, stops it when the table
pruned it (fenced out: its claims are someone else's now), and recovers dead processes' claims.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vtasks.runtime.worker import Worker

logger = logging.getLogger("vtasks.worker")


async def keep_alive(worker: Worker) -> None:
    """Every ``heartbeat_interval`` (jittered down by up to a fifth), until fenced out."""
    interval = worker.settings.heartbeat_interval
    while True:
        await asyncio.sleep(interval * random.uniform(0.8, 1.0))
        try:
            if not await worker.driver.heartbeat(worker.process_id):
                logger.error("vtasks: this process was pruned from the process table; stopping")
                worker._fenced_out = True
                worker.stop()
                return
            if worker._slots.pending:
                await worker._release_slots()
            recovered = await worker.driver.recover_dead(worker.settings.alive_threshold)
            if worker.observer is not None:
                worker.observer.running(worker._running.values())
                worker.observer.recovered(len(recovered.requeued), len(recovered.failed))
            if recovered.requeued or recovered.failed:
                logger.warning(
                    "vtasks: recovered dead process(es) %s: %d requeued, %d failed",
                    recovered.processes, len(recovered.requeued), len(recovered.failed),
                )  # fmt: skip
        except Exception:
            logger.exception("vtasks: heartbeat failed; will retry")
