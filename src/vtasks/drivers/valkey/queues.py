"""Queue controls and the process table on Valkey for the backend (and through it ``ops``, the
admin and the CLI).

Sync functions of a client and a key prefix. Each change to one queue is one script in that
queue's slot (so they hold in cluster mode too); what spans queues is a non-transactional pipeline
of per-queue calls. Pausing is a flag key in the queue's slot that ``claim.lua`` checks, so a
worker pays no extra round trip for it; while paused, enqueues push no wake-up tokens and
``next_due`` reports nothing due, and resuming pushes the tokens the pause held back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.utils import timezone

from vtasks.drivers.valkey.keys import global_keys, queue_keys
from vtasks.drivers.valkey.records import from_us, to_us
from vtasks.drivers.valkey.scripts import SCRIPTS, WAKE_CAP, Call, run

#: Entries one ``clear.lua`` call or ``retry.lua`` call handles: bounds how long it holds the server.
BATCH = 1000


def known_queues(client: Any, prefix: str) -> list[str]:
    """Every queue ever enqueued to, served, or paused."""
    return sorted(q.decode() for q in client.smembers(global_keys(prefix).queues))


def depths(client: Any, prefix: str, queues: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    """Per queue: ready (due now), delayed, running and failed (dead-letter) counts, whether it
    is paused, and the age in seconds of its longest-waiting due message (``None``: none)."""
    names = known_queues(client, prefix) if queues is None else list(dict.fromkeys(queues))
    now = timezone.now()
    calls = []
    for name in names:
        k = queue_keys(prefix, name)
        keys = (k.ready, k.delayed, k.running, k.dead, k.paused)
        calls.append(Call(SCRIPTS["depths"], keys, (k.task_prefix, to_us(now))))
    out: dict[str, dict[str, Any]] = {}
    for name, reply in zip(names, run(client, calls) if calls else [], strict=True):
        ready, delayed, running, dead, paused, oldest = reply
        since = from_us(oldest) if oldest else None
        out[name] = {
            "ready": int(ready), "delayed": int(delayed), "running": int(running),
            "failed": int(dead), "paused": bool(int(paused)),
            "oldest_age": max(0.0, (now - since).total_seconds()) if since else None,
        }  # fmt: skip
    return out


def pause(client: Any, prefix: str, queue: str) -> None:
    pipe = client.pipeline(transaction=False)
    pipe.sadd(global_keys(prefix).queues, queue)  # so that status lists it
    pipe.set(queue_keys(prefix, queue).paused, "1")
    pipe.execute()


def resume(client: Any, prefix: str, queue: str) -> bool:
    """Resume ``queue``; whether it was paused."""
    k = queue_keys(prefix, queue)
    call = Call(
        SCRIPTS["resume"], (k.paused, k.ready, k.delayed, k.wake),
        (WAKE_CAP, to_us(timezone.now())),
    )  # fmt: skip
    [was] = run(client, [call])
    return bool(int(was))


def clear(client: Any, prefix: str, queue: str, *, failed: bool) -> int:
    """Remove the waiting (ready and delayed) messages, and the dead letters with ``failed``;
    how many were removed. Running messages stay: their workers finish them."""
    k = queue_keys(prefix, queue)
    call = Call(
        SCRIPTS["clear"], (k.ready, k.delayed, k.dead),
        (k.task_prefix, k.unique_prefix, BATCH, "1" if failed else "0"),
    )  # fmt: skip
    removed = 0
    while taken := int(run(client, [call])[0]):
        removed += taken
    return removed


def find_queue(client: Any, prefix: str, task_id: str) -> str | None:
    """The queue holding ``task_id`` (an id does not say which one), or ``None``."""
    names = known_queues(client, prefix)
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.exists(queue_keys(prefix, name).task(task_id))
    for name, found in zip(names, pipe.execute() if names else [], strict=True):
        if found:
            return name
    return None


def retry(client: Any, prefix: str, queue: str, task_ids: Sequence[str]) -> list[bool]:
    """Put FAILED tasks of ``queue`` back to READY; whether each one went back."""
    k = queue_keys(prefix, queue)
    head = (k.task_prefix, k.unique_prefix, WAKE_CAP, to_us(timezone.now()))
    calls = [
        Call(SCRIPTS["retry"], (k.ready, k.dead, k.wake), (*head, *task_ids[i : i + BATCH]))
        for i in range(0, len(task_ids), BATCH)
    ]
    return [bool(int(flag)) for flags in (run(client, calls) if calls else []) for flag in flags]


def dead_letters(client: Any, prefix: str, queue: str) -> list[str]:
    """The ids in ``queue``'s dead-letter store, oldest failure first."""
    return [i.decode() for i in reversed(client.lrange(queue_keys(prefix, queue).dead, 0, -1))]


def processes(client: Any, prefix: str) -> list[dict[str, Any]]:
    """The process table (as the database backend's ``processes()`` gives it), by kind and id."""
    keys = global_keys(prefix)
    ids = [i.decode() for i in client.zrange(keys.processes, 0, -1)]
    pipe = client.pipeline(transaction=False)
    for process_id in ids:
        pipe.hgetall(keys.process(process_id))
    rows = []
    for fields in pipe.execute() if ids else []:
        if not fields:
            continue  # deregistered meanwhile
        row = {k.decode(): v.decode() for k, v in fields.items()}
        rows.append({
            "id": row.get("id", ""), "kind": row.get("kind", ""),
            "hostname": row.get("hostname", ""), "pid": int(row.get("pid") or 0),
            "queues": row.get("queues", "[]"), "started_at": from_us(row.get("started_at")),
            "heartbeat_at": from_us(row.get("heartbeat_at")),
        })  # fmt: skip
    return sorted(rows, key=lambda r: (r["kind"], r["id"]))
