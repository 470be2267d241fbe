"""A worker's queue selectors (``"*"``, ``"email*"``), resolved against the store's queues.

Resolved at start and every ``selector_refresh`` seconds from ``Driver.known_queues`` (a cheap
listing), never per claim; a worker whose queues are all plain names has no plan at all, so its
claim stays one driver call. ``steps`` and ``serving`` are replaced, never changed in place: a
claim in flight keeps the lists it started with.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from vtasks.core import selectors
from vtasks.drivers.base import Claim, Driver

logger = logging.getLogger("vtasks.worker")


class QueuePlan:
    def __init__(self, entries: Sequence[str], exclude: Iterable[str] = ()) -> None:
        self.entries = list(entries)
        #: Queues served elsewhere (batch queues): never claimed through a selector.
        self.exclude = frozenset(exclude)
        self.steps: tuple[selectors.Step, ...] | None = None
        #: Every queue the plan covers, for ``next_due`` and ``wait_for_work``.
        self.serving: list[str] = []

    async def refresh(self, driver: Driver) -> None:
        """Resolve again; when the store cannot list its queues, keep the last plan (at first:
        the plain names alone)."""
        try:
            known = await driver.known_queues()
        except Exception as exc:
            logger.warning("vtasks: could not list the queues for %s: %s", self.entries, exc)
            if self.steps is None:
                self._use(selectors.resolve(self.entries, (), self.exclude))
            return
        steps = selectors.resolve(self.entries, known, self.exclude)
        if steps != self.steps:
            logger.info("vtasks: %s resolve to %s", self.entries, [list(s.queues) for s in steps])
        self._use(steps)

    def _use(self, steps: tuple[selectors.Step, ...]) -> None:
        self.steps, self.serving = steps, selectors.flatten(steps)

    async def claim(self, driver: Driver, room: int, process_id: str) -> list[Claim]:
        """Up to ``room`` claims, step by step in the listed order (a selector's queues by
        priority). A step that fails after others claimed ends the claim with what it has."""
        claims: list[Claim] = []
        for step in self.steps or ():
            if len(claims) >= room:
                break
            claim = driver.claim_by_priority if step.by_priority else driver.claim
            try:
                claims += await claim(step.queues, room - len(claims), process_id)
            except Exception:
                if not claims:
                    raise
                # Keep what was claimed: returning it gets it run; raising would strand it.
                logger.exception("vtasks: claiming from %s failed", list(step.queues))
                break
        return claims
