"""Hand-off: an enqueue claims a due message for a worker that waits idle, sparing it a claim.

Without it, an idle worker's pickup is three hops: the enqueue pushes a wake token, the worker's
blocking pop returns it, and the worker claims (a round trip of its own). With it, a worker about
to block registers in each queue's idle set (``idle.lua``, pipelined with its blocking pop, with a
deadline in server time that the next pop renews), and watches its inboxes before the wake lists.
``enqueue.lua``, finding the queue without backlog and a registered worker within its deadline,
claims the message for that worker exactly as ``claim.lua`` would (RUNNING, first attempt, its
lease, in the running set) and pushes it to the worker's inbox: the pop returns the message itself.

What could strand a handed message, and what takes care of it:

- the worker took more work meanwhile: every ``claim.lua`` call drains its inbox first (checking
  each item is still its own), and a claim that fills the worker's room takes it off the idle set;
- a pop that returns while nobody waits: its item is kept by the driver and returned by the next
  claim (``ValkeyDriver.claim`` serves those first, with no round trip);
- the worker stops: it leaves the idle sets, ends its own pops with an empty item, and puts what
  was handed to it and never started back to READY uncounted (``reclaim.lua``);
- the worker dies while idle: its registration lapses within ``blocking_timeout + IDLE_GRACE``;
  whoever recovers it runs ``reclaim.lua`` on its inboxes (uncounted, it never started), and what
  it had popped is RUNNING under a dead claimer, recovered like any claim.

A cluster does not hand off (a worker's queues sit in different slots; ``idle.lua`` touches them
all): its workers are woken by tokens and claim, as before. Neither does a worker whose waits
switch between groups of queues (batch queues beside plain ones, a selector's changing set).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from datetime import datetime

from vtasks.drivers.base import Claim
from vtasks.drivers.valkey.records import build_claim

#: Seconds an idle registration outlives the blocking pop that made it (the next pop renews it).
IDLE_GRACE = 1.0


def claim_from_item(item: bytes, queue: str, process_id: str, now: datetime) -> Claim:
    """The ``Claim`` of an inbox item: ``id\\nstarted\\nmax_attempts\\nlen(key)\\n`` + the unique
    key released on finish (or nothing) + the message body."""
    task_id, started, max_attempts, held_length, rest = item.split(b"\n", 4)
    size = int(held_length)
    row = [task_id, rest[size:], b"0", b"", b"[]", started, max_attempts, rest[:size]]
    return build_claim(row, queue, process_id, now)


def item_id(item: bytes) -> str:
    return item.split(b"\n", 1)[0].decode()


class Handed:
    """Claims handed to this process that no ``claim`` has returned yet, per queue."""

    def __init__(self) -> None:
        self._by_queue: dict[str, deque[Claim]] = {}

    def __bool__(self) -> bool:
        return bool(self._by_queue)

    def add(self, claim: Claim) -> None:
        self._by_queue.setdefault(claim.queue_name, deque()).append(claim)

    def take(self, queues: Sequence[str], limit: int) -> list[Claim]:
        taken: list[Claim] = []
        for queue in queues:
            held = self._by_queue.get(queue)
            while held and len(taken) < limit:
                taken.append(held.popleft())
            if held is not None and not held:
                del self._by_queue[queue]
        return taken

    def ids(self, queue: str) -> set[bytes]:
        return {claim.id.encode() for claim in self._by_queue.get(queue, ())}

    def queues(self) -> set[str]:
        return set(self._by_queue)

    def pop_ids(self, queue: str) -> list[str]:
        return [claim.id for claim in self._by_queue.pop(queue, ())]
