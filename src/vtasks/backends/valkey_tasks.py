"""Single tasks on Valkey, listed by state and acted on one by one: what the Django admin's Valkey
adapter reads and does, through ``ValkeyBackend``'s methods.

Listing reads the queue's sets (ready, delayed, running) or its dead-letter list, then the task
hashes in one pipeline. Each change is one Lua script per queue (``drivers/valkey/scripts/*.lua``), so it
holds against a worker claiming or finishing the same task at the same moment, in cluster mode too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from django.utils import timezone

from vtasks.drivers.valkey.finished import FINISHED_TTL
from vtasks.drivers.valkey.keys import queue_keys
from vtasks.drivers.valkey.queues import find_queue, known_queues
from vtasks.drivers.valkey.records import record_view, to_us
from vtasks.drivers.valkey.scripts import WAKE_CAP, Call, load, run

State = Literal["pending", "scheduled", "running", "failed"]
STATES: tuple[State, ...] = ("pending", "scheduled", "running", "failed")


SCRIPTS = {name: load(name) for name in ("run_now", "delete", "release", "revoke")}


def list_tasks(
    client: Any, prefix: str, state: State, queue: str | None, limit: int
) -> list[dict[str, Any]]:
    """Up to ``limit`` tasks per queue in ``state``, as mappings with the ``TaskRecord`` field
    names: pending in claim order, scheduled by due time, running by claim time, failed newest
    first."""
    names = known_queues(client, prefix) if queue is None else [queue]
    pipe = client.pipeline(transaction=False)
    for name in names:
        k = queue_keys(prefix, name)
        if state == "failed":
            pipe.lrange(k.dead, 0, limit - 1)
        else:
            pipe.zrange({"pending": k.ready, "scheduled": k.delayed, "running": k.running}[state],
                        0, limit - 1)  # fmt: skip
    found = [
        (name, raw.decode())
        for name, ids in zip(names, pipe.execute() if names else [], strict=True)
        for raw in ids
    ]
    pipe = client.pipeline(transaction=False)
    for name, task_id in found:
        pipe.hgetall(queue_keys(prefix, name).task(task_id))
    rows = []
    for (name, task_id), fields in zip(found, pipe.execute() if found else [], strict=True):
        if fields:  # finished or deleted since the ids were read
            rows.append({**record_view(task_id, fields), "queue_name": name})
    return rows


def run_now(client: Any, prefix: str, task_ids: Sequence[str]) -> int:
    """Make waiting tasks due now; how many were waiting."""
    return _per_queue(client, prefix, task_ids, _run_now_call)


def delete(client: Any, prefix: str, task_ids: Sequence[str]) -> int:
    """Delete tasks that are not running; how many went."""
    return _per_queue(client, prefix, task_ids, _delete_call)


def release(client: Any, prefix: str, claims: Sequence[tuple[str, str]]) -> int:
    """Put tasks back to READY that are RUNNING under the given claimer; how many went back."""
    claimers = dict(claims)
    return _per_queue(
        client, prefix, list(claimers), lambda k, ids: _release_call(k, ids, claimers)
    )


def revoke(
    client: Any, prefix: str, task_id: str, error: str, expires_at: datetime | None, cap: int
) -> bool:
    """Make a waiting task FAILED with ``error`` (JSON) so it never runs; whether it was waiting.
    Finding the queue is a read, the change one ``revoke.lua`` call that checks the state again."""
    queue = find_queue(client, prefix, task_id)
    if queue is None:
        return False
    k = queue_keys(prefix, queue)
    expires = "" if expires_at is None else to_us(expires_at)
    args = (
        k.task_prefix, k.unique_prefix, cap, error, to_us(timezone.now()), expires,
        k.finished_prefix, FINISHED_TTL, task_id,
    )  # fmt: skip
    [[flags, _evicted]] = run(client, [Call(SCRIPTS["revoke"], (k.ready, k.delayed, k.dead), args)])
    return bool(int(flags[0]))


def _per_queue(client: Any, prefix: str, task_ids: Sequence[str], make: Any) -> int:
    by_queue: dict[str, list[str]] = {}
    for task_id in task_ids:
        queue = find_queue(client, prefix, task_id)
        if queue is not None:
            by_queue.setdefault(queue, []).append(task_id)
    calls = [make(queue_keys(prefix, queue), ids) for queue, ids in by_queue.items()]
    return sum(int(flag) for flags in (run(client, calls) if calls else []) for flag in flags)


def _run_now_call(k: Any, ids: list[str]) -> Call:
    args = (k.task_prefix, WAKE_CAP, to_us(timezone.now()), *ids)
    return Call(SCRIPTS["run_now"], (k.delayed, k.wake, k.paused), args)


def _delete_call(k: Any, ids: list[str]) -> Call:
    return Call(
        SCRIPTS["delete"], (k.ready, k.delayed, k.dead), (k.task_prefix, k.unique_prefix, *ids)
    )


def _release_call(k: Any, ids: list[str], claimers: dict[str, str]) -> Call:
    pairs = [part for task_id in ids for part in (task_id, claimers[task_id])]
    args = (k.task_prefix, WAKE_CAP, to_us(timezone.now()), *pairs)
    return Call(SCRIPTS["release"], (k.ready, k.running, k.wake, k.paused), args)
