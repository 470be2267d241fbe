"""Recovering dead processes' claims on Valkey: ``ValkeyDriver.recover_dead`` delegates here.

No one script can see the process table and a queue's claims (different hash slots), so recovery
goes in steps. ``prune.lua`` drops the stale processes and lists the live ones and the known
queues; ``reclaim.lua`` puts back, uncounted, what an enqueue handed to a dead process that never
took it (``handoff.py``); ``find_orphans.lua`` lists each queue's RUNNING records whose claimer is
not live; the claimers are checked once more against the process table (one that registered after
the prune is alive, not an orphan's owner); ``finish.lua`` releases the rest as a failed attempt,
fenced on the claimer, so a late finish by a process presumed dead, or a concurrent recoverer,
loses cleanly. Concurrency slots whose holder is not alive are freed the same way (``slots.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from vtasks.drivers.base import Recovered
from vtasks.drivers.records import worker_lost_error
from vtasks.drivers.valkey.keys import global_keys, queue_keys
from vtasks.drivers.valkey.records import decode_text, to_us
from vtasks.drivers.valkey.scripts import SCRIPTS, WAKE_CAP, Call
from vtasks.drivers.valkey.slots import SlotStore
from vtasks.wire import codec

#: Runs script calls in one round trip (the driver's ``_run``).
Run = Callable[[Sequence[Call]], Awaitable[list[Any]]]
#: Records ``(queue, finish.lua values)`` outcomes; whether each applied (the driver's ``_finish``).
Finish = Callable[[Sequence[tuple[str, list[Any]]]], Awaitable[list[bool]]]


async def recover_dead(
    client: Any, run: Run, finish: Finish, slots: SlotStore, prefix: str, alive_threshold: float
) -> Recovered:
    """Release the claims of processes silent for ``alive_threshold`` seconds (see above)."""
    keys = global_keys(prefix)
    now = timezone.now()
    cutoff = to_us(now - timedelta(seconds=alive_threshold))
    prune = Call(
        SCRIPTS["prune"], (keys.processes, keys.queues, keys.concurrency_keys),
        (keys.process_prefix, cutoff),
    )  # fmt: skip
    [[dead, live, queues, limited_keys]] = await run([prune])
    dead_ids = [d.decode() for d in dead]
    if limited_keys:
        await slots.reap(sorted(k.decode() for k in limited_keys), live, cutoff)
    queue_names = sorted(q.decode() for q in queues)
    if dead_ids:
        await run([
            Call(
                SCRIPTS["reclaim"],
                (k.ready, k.running, k.wake, k.idle, k.inbox(dead)),
                (k.task_prefix, dead, WAKE_CAP),
            )
            for dead in dead_ids
            for k in (queue_keys(prefix, q) for q in queue_names)
        ])  # fmt: skip
    finds = [
        Call(
            SCRIPTS["find_orphans"],
            (queue_keys(prefix, q).running,),
            (queue_keys(prefix, q).task_prefix, *live),
        )  # fmt: skip
        for q in queue_names
    ]
    found = await run(finds) if finds else []
    orphans = [(q, row) for q, rows in zip(queue_names, found, strict=True) for row in rows]
    orphans = await _still_orphaned(client, keys.processes, orphans, cutoff)
    if not orphans:
        return Recovered(processes=dead_ids, requeued=[], failed=[])
    batch = [(queue, _orphan_args(row, now)) for queue, row in orphans]
    applied = await finish(batch)
    done = [(args[0], args[3]) for (_, args), ok in zip(batch, applied, strict=True) if ok]
    return Recovered(
        processes=dead_ids,
        requeued=[task_id for task_id, status in done if status == "READY"],
        failed=[task_id for task_id, status in done if status == "FAILED"],
    )


async def _still_orphaned(
    client: Any, processes_key: str, orphans: list[tuple[str, list[Any]]], cutoff: int
) -> list[tuple[str, list[Any]]]:
    """Drop orphans whose claimer is alive after all (it registered after the prune)."""
    if not orphans:
        return []
    claimers = sorted({row[1].decode() for _, row in orphans})
    scores = await client.zmscore(processes_key, claimers)
    alive = {c for c, s in zip(claimers, scores, strict=True) if s is not None and s >= cutoff}
    return [(q, row) for q, row in orphans if row[1].decode() not in alive]


def _orphan_args(row: list[Any], now: datetime) -> list[Any]:
    """A dead claimer's claim as a failed attempt: READY again while attempts remain."""
    task_id, claimed_by, attempts, max_attempts, errors = (v.decode() for v in row)
    status = "READY" if int(attempts) < int(max_attempts) else "FAILED"
    earlier, _ = decode_text("errors", errors)  # a malformed list must not stop recovery
    errors_json = codec.dumps(earlier + [worker_lost_error(claimed_by)])
    return [task_id, claimed_by, attempts, status, errors_json, to_us(now), "", "", "0"]
