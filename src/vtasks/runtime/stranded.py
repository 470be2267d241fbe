"""Claims that ran while their reply was lost: held in the store, unknown to the worker.

A claim call that failed in flight may have run on the server: the store then holds messages for
this process that the worker never saw. Nothing else would ever release them (the process is
alive, so no recovery takes them), so once the store answers again the worker asks what it holds
in those queues and hands back whatever it does not know of.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vtasks.runtime.worker import Worker

logger = logging.getLogger("vtasks.worker")


async def release_stranded(worker: Worker) -> None:
    """Hand back what the store says ``worker``'s process holds in the queues of a failed claim
    but the worker does not know of. Fenced: a claim finished meanwhile stays."""
    queues = sorted(worker._claims_unsure)
    try:
        held = await worker.driver.held_by(worker.process_id, queues)
    except Exception:
        logger.exception("vtasks: could not list this process's claims; will look again")
        return
    # Known after the await: running, held, waiting admission, or finished and not recorded.
    known = {claim.id for claim in worker._running.values()}
    known.update(claim.id for claim in worker._buffer)
    known.update(claim.id for claim in worker._unadmitted)
    known |= worker.recorder.ids()
    stranded = [ref for ref in held if ref.id not in known]
    worker._claims_unsure.difference_update(queues)
    if stranded:
        logger.warning("vtasks: handing back %d claim(s) whose reply was lost", len(stranded))
        await worker.driver.hand_back(stranded, worker.process_id)
