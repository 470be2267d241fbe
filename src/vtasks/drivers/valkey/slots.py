"""Concurrency slots on Valkey: one hash per ``concurrency_key`` (``keys.concurrency_slots``,
task id -> holder), taken and freed by ``cc_acquire.lua`` / ``cc_release.lua`` fenced on the
holder, and a global index of the keys in use (``GlobalKeys.concurrency_keys``) for the reaper.
``ValkeyDriver`` delegates here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from vtasks.drivers.valkey.exchange import AsyncExchange
from vtasks.drivers.valkey.keys import concurrency_slots, global_keys
from vtasks.drivers.valkey.scripts import SCRIPTS, Call, arun


class SlotStore:
    """The slot operations on one open client (and its lane, off a cluster)."""

    def __init__(self, client: Any, lane: AsyncExchange | None, prefix: str) -> None:
        self.client = client
        self.lane = lane
        self.prefix = prefix
        self.keys = global_keys(prefix)

    async def acquire(
        self, requests: Sequence[tuple[str, str, int]], process_id: str
    ) -> list[bool]:
        """One ``cc_acquire.lua`` call per request (each on its key's own slot), and the keys
        added to the reaper's index, in one round trip."""
        calls = [
            Call(
                SCRIPTS["cc_acquire"],
                (concurrency_slots(self.prefix, key),),
                (task_id, process_id, limit),
            )  # fmt: skip
            for task_id, key, limit in requests
        ]
        index = ("SADD", self.keys.concurrency_keys, *{key for _, key, _ in requests})
        got = await arun(self.client, calls, after=[index], lane=self.lane)
        return [bool(int(flag)) for flag in got]

    async def release(self, slots: Sequence[tuple[str, str]], process_id: str) -> None:
        by_key: dict[str, list[str]] = defaultdict(list)
        for task_id, key in slots:
            by_key[key] += (task_id, process_id)
        await self._release(by_key)

    async def _release(self, by_key: dict[str, list[str]]) -> None:
        calls = [
            Call(SCRIPTS["cc_release"], (concurrency_slots(self.prefix, key),), pairs)
            for key, pairs in by_key.items()
        ]
        if calls:
            await arun(self.client, calls, lane=self.lane)

    async def reap(self, names: list[str], live: Sequence[bytes], cutoff: int) -> None:
        """Free the slots whose holder is not alive; forget keys that hold none.

        A key added to the index after a holder's SADD lost a race with the SREM here comes
        back with the next acquire attempt on it (blocked tasks keep trying).
        """
        index = self.keys.concurrency_keys
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.hgetall(concurrency_slots(self.prefix, name))
        holders = await pipe.execute()
        alive = {p.decode() for p in live}
        empty = [name for name, fields in zip(names, holders, strict=True) if not fields]
        stale = {
            name: [(t.decode(), p.decode()) for t, p in fields.items() if p.decode() not in alive]
            for name, fields in zip(names, holders, strict=True)
        }
        claimers = sorted({p for pairs in stale.values() for _, p in pairs})
        if claimers:  # registered after the prune: alive after all
            scores = await self.client.zmscore(self.keys.processes, claimers)
            alive |= {
                c for c, s in zip(claimers, scores, strict=True) if s is not None and s >= cutoff
            }
        await self._release(
            {
                name: [v for task_id, p in pairs if p not in alive for v in (task_id, p)]
                for name, pairs in stale.items()
                if any(p not in alive for _, p in pairs)
            }
        )
        if empty:
            await self.client.srem(index, *empty)
