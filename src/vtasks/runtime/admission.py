"""Per-key concurrency on the worker side: which claims may start now.

A claim whose stored options carry ``{"concurrency": {"key", "limit", "on_conflict"}}`` (see
``vtasks.backends.concurrency``) needs one of its key's slots before it runs. The slots live in the
store (``Driver.acquire_slots``), so the limit holds across every worker; a claim refused one is
deferred (``block``) or failed at once (``discard``). Claims without a key never come here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from vtasks.core.errors import ConcurrencyLimited
from vtasks.drivers.base import Claim, Driver

if TYPE_CHECKING:
    from vtasks.runtime.worker import Worker

logger = logging.getLogger("vtasks.worker")

ON_CONFLICT = ("block", "discard")
#: Deferred claims remembered per key for ``HeldSlots`` (beyond: they wait out their delay).
MAX_WAITING = 1000


def limited(claims: Sequence[Claim]) -> bool:
    """Whether any claim has a concurrency key (a dict look-up per claim: the hot-path test)."""
    for claim in claims:
        if "concurrency" in claim.options:
            return True
    return False


def spec_of(claim: Claim) -> tuple[str, int, str] | None:
    """``(key, limit, on_conflict)`` of a claim, ``None`` without one (or a malformed one: it
    was checked at enqueue, so only hand-edited data gets here; such a claim runs unlimited)."""
    spec: Any = claim.options.get("concurrency")
    if not isinstance(spec, dict):
        return None
    key, limit, on_conflict = spec.get("key"), spec.get("limit"), spec.get("on_conflict")
    if not isinstance(key, str) or not isinstance(limit, int) or limit < 1:
        return None
    return key, limit, on_conflict if on_conflict in ON_CONFLICT else "block"


@dataclass(slots=True)
class Admission:
    """What a batch of claims may do now."""

    #: May run: no key, or a slot taken (``held`` maps their task ids to the keys).
    admitted: list[Claim] = field(default_factory=list)
    blocked: list[Claim] = field(default_factory=list)
    discarded: list[tuple[Claim, str, int]] = field(default_factory=list)
    held: dict[str, str] = field(default_factory=dict)


async def admit(driver: Driver, claims: Sequence[Claim], process_id: str) -> Admission:
    """Take the slots of ``claims`` in one driver call and sort the claims (in their order)."""
    result = Admission()
    requests: list[tuple[str, str, int]] = []
    asking: dict[str, tuple[str, int, str]] = {}
    for claim in claims:
        spec = spec_of(claim)
        if spec is not None:
            requests.append((claim.id, spec[0], spec[1]))
            asking[claim.id] = spec
    got = await driver.acquire_slots(requests, process_id) if requests else []
    granted = {task_id for (task_id, _, _), ok in zip(requests, got, strict=True) if ok}
    for claim in claims:
        spec = asking.get(claim.id)
        if spec is None:
            result.admitted.append(claim)
        elif claim.id in granted:
            result.admitted.append(claim)
            result.held[claim.id] = spec[0]
        elif spec[2] == "discard":
            result.discarded.append((claim, spec[0], spec[1]))
        else:
            result.blocked.append(claim)
    return result


class HeldSlots:
    """The concurrency slots one worker holds, those it still has to free, and the claims it
    deferred because their key was full.

    A slot must never outlive its task while the process lives (the reaper frees only the slots
    of dead processes), so a release that fails is kept and tried again. Freeing a slot makes the
    key's oldest deferred claims of this worker due at once (``Driver.expedite``), so they need
    not wait out their delay; other workers' deferred claims still do.
    """

    def __init__(self, driver: Driver, process_id: str) -> None:
        self.driver = driver
        self.process_id = process_id
        #: task id -> key, from admission until the outcome is recorded or the claim goes back.
        self.held: dict[str, str] = {}
        #: ``(task id, key)`` to free.
        self.pending: list[tuple[str, str]] = []
        #: key -> {task id: queue} of claims deferred here, oldest first (bounded per key).
        self.waiting: dict[str, dict[str, str]] = {}

    def deferred(self, claims: Iterable[Claim]) -> None:
        for claim in claims:
            spec = spec_of(claim)
            if spec is None:
                continue
            waiting = self.waiting.setdefault(spec[0], {})
            if len(waiting) < MAX_WAITING:
                waiting.setdefault(claim.id, claim.queue_name)

    def admitted(self, held: dict[str, str]) -> None:
        self.held.update(held)
        for task_id, key in held.items():
            waiting = self.waiting.get(key)
            if waiting is not None and waiting.pop(task_id, None) is not None and not waiting:
                del self.waiting[key]

    def release_later(self, claims: Iterable[Claim]) -> None:
        for claim in claims:
            key = self.held.pop(claim.id, None)
            if key is not None:
                self.pending.append((claim.id, key))

    async def release(self) -> bool:
        """Free the pending slots; whether deferred claims were made due (a claim is worth it)."""
        slots, self.pending = self.pending, []
        if not slots:
            return False
        try:
            await self.driver.release_slots(slots, self.process_id)
        except Exception:
            logger.exception(
                "vtasks: could not free %d concurrency slot(s); will retry", len(slots)
            )
            self.pending[:0] = slots
            return False
        return await self._expedite(slots)

    async def _expedite(self, slots: list[tuple[str, str]]) -> bool:
        due: list[tuple[str, str]] = []
        for _, key in slots:
            waiting = self.waiting.get(key)
            # Two per freed slot: one may have started elsewhere meanwhile.
            for task_id in list(waiting or ())[:2]:
                due.append((task_id, waiting.pop(task_id)))  # type: ignore[union-attr]
            if waiting is not None and not waiting:
                del self.waiting[key]
        if not due:
            return False
        try:
            await self.driver.expedite(due, datetime.now(UTC))
        except Exception:  # only a shortcut: the deferred claims come due anyway
            logger.exception("vtasks: could not make %d deferred task(s) due", len(due))
            return False
        return True


async def admit_claims(worker: Worker, claims: list[Claim], unadmitted: list[Claim]) -> list[Claim]:
    """The claims of ``worker`` that may start now; the rest are deferred (``block``) or failed
    (``discard``). ``unadmitted`` holds, and gets back, claims whose admission failed."""
    claims = unadmitted + claims
    unadmitted.clear()
    try:
        admission = await admit(worker.driver, claims, worker.process_id)
    except Exception:
        logger.exception("vtasks: could not take concurrency slots; trying again")
        unadmitted += [c for c in claims if limited([c])]
        await worker._pause(0.5)
        return [c for c in claims if not limited([c])]
    worker._slots.admitted(admission.held)
    if admission.blocked:
        await _defer(worker, admission.blocked, unadmitted)
    for claim, key, limit in admission.discarded:
        exc = ConcurrencyLimited(
            f"not run: {limit} task(s) with the concurrency key {key!r} were already "
            "running (on_conflict='discard')"
        )
        worker.recorder.add(worker.executor.refuse(claim, exc))
        worker.processed += 1
    return admission.admitted


async def _defer(worker: Worker, blocked: list[Claim], unadmitted: list[Claim]) -> None:
    until = datetime.now(UTC) + timedelta(seconds=worker.settings.blocked_delay)
    try:
        await worker.driver.defer(blocked, worker.process_id, until)
        worker._slots.deferred(blocked)
    except Exception:
        logger.exception("vtasks: could not defer %d claim(s)", len(blocked))
        unadmitted += blocked
