"""Which queues are paused, as the SQL drivers' claims see it: re-read at most once a second.

A pause is a row in ``vtasks_paused_queue``. Reading it on every claim would cost a query per
poll (dj_queue's regret); a worker instead re-reads it when it is older than ``REFRESH`` seconds,
so a pause takes effect within about a second and a claim of an unpaused queue costs nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence

logger = logging.getLogger("vtasks.worker")

#: Seconds a worker's view of the paused queues may be old.
REFRESH = 1.0


class PausedQueues:
    def __init__(self, refresh: float = REFRESH, clock: Callable[[], float] = time.monotonic):
        self.refresh = refresh
        self.clock = clock
        self.names: frozenset[str] = frozenset()
        self._read_at = float("-inf")

    def stale(self) -> bool:
        return self.clock() - self._read_at >= self.refresh

    def update(self, names: Iterable[str]) -> None:
        self.names = frozenset(names)
        self._read_at = self.clock()

    def failed(self, exc: BaseException) -> None:
        """The read failed (the table not migrated yet?): keep the last view, retry later."""
        self._read_at = self.clock()
        logger.warning("vtasks: could not read the paused queues: %s", exc)

    def serve(self, queues: Sequence[str]) -> Sequence[str]:
        """``queues`` without the paused ones, in their order."""
        if not self.names:
            return queues
        return [queue for queue in queues if queue not in self.names]
