"""Claiming by priority across several queues on Valkey (a worker's queue selector such as
``"email*"`` takes the queues it matches as one pool): ``ValkeyDriver.claim_by_priority``.

Each queue's sequence numbers are its own and no script can see two queues (their keys sit in
different hash slots), so priority holds across the queues as far as their ready sets' heads
show it, and FIFO within each queue only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from vtasks.drivers.base import Claim
from vtasks.drivers.valkey.keys import queue_keys

#: ``ValkeyDriver.claim``: claims from queues in the order given.
Claimer = Callable[[Sequence[str], int, str], Awaitable[list[Claim]]]


async def claim_by_priority(
    client: Any, prefix: str, claim: Claimer, queues: Sequence[str], limit: int, process_id: str
) -> list[Claim]:
    """Each queue's best ``limit`` ready scores are read (one pipeline), the best ``limit`` of
    them say how many to claim from each queue, then any room left is claimed in queue order
    (which also promotes due delayed messages). Within a priority, earlier-listed queues go
    first. Returned highest priority first."""
    if limit <= 0 or not queues:
        return []
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.zrange(queue_keys(prefix, queue).ready, 0, limit - 1, withscores=True)
    heads = await pipe.execute()
    best = sorted(
        (int(score) >> 44, index)  # the priority band (enqueue.lua: (100 - p) * 2^44 + seq)
        for index, entries in enumerate(heads)
        for _, score in entries
    )[:limit]
    counts = [0] * len(queues)
    top: dict[int, int] = {}  # queue index -> its best band (best is sorted)
    for band, index in best:
        counts[index] += 1
        top.setdefault(index, band)
    claims: list[Claim] = []
    for index in sorted(top, key=lambda i: (top[i], i)):
        claims += await claim([queues[index]], counts[index], process_id)
    if len(claims) < limit:
        claims += await claim(queues, limit - len(claims), process_id)
    claims.sort(key=lambda c: -c.priority)  # stable: queue order within a priority
    return claims
