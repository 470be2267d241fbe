"""Read and edit stored tasks, locks and processes by TASKS alias: database rows or Valkey keys.

Tests assert on what is stored; these helpers give both backends the same view (a mapping with the
``TaskRecord`` field names), so the same assertions run on each.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from django.tasks import task_backends

VALKEY = "valkey"


def is_valkey(alias: str) -> bool:
    return alias == VALKEY


# -- Valkey plumbing -----------------------------------------------------------------------------
def _valkey() -> tuple[Any, str]:
    from vtasks.drivers.valkey.client import sync_client

    backend = task_backends[VALKEY]
    return sync_client(backend.url), backend.prefix


def _task_keys() -> Iterator[tuple[str, bytes]]:
    """(task id, key) of every stored task."""
    from vtasks.drivers.valkey.keys import glob_escape, global_keys, queue_keys

    client, prefix = _valkey()
    for queue in sorted(client.smembers(global_keys(prefix).queues)):
        task_prefix = queue_keys(prefix, queue.decode()).task_prefix
        for key in client.scan_iter(match=glob_escape(task_prefix) + "*", count=1000):
            yield key.decode()[len(task_prefix) :], key


def _task_key(task_id: str) -> bytes | None:
    from vtasks.drivers.valkey.keys import global_keys, queue_keys

    client, prefix = _valkey()
    for queue in sorted(client.smembers(global_keys(prefix).queues)):
        key = queue_keys(prefix, queue.decode()).task(task_id).encode()
        if client.exists(key):
            return key
    return None


def clear(alias: str) -> None:
    """Delete everything the alias stores (for Valkey: only this run's keys)."""
    if not is_valkey(alias):
        from tests.conftest import clear_tables

        clear_tables(alias)
        return
    from vtasks.drivers.valkey.keys import own_key_pattern

    client, prefix = _valkey()
    keys = list(client.scan_iter(match=own_key_pattern(prefix), count=1000))
    for start in range(0, len(keys), 1000):
        client.delete(*keys[start : start + 1000])


# -- tasks ---------------------------------------------------------------------------------------
def record(alias: str, task_id: str) -> dict[str, Any] | None:
    """The stored task as a mapping with the ``TaskRecord`` field names, or ``None``."""
    if not is_valkey(alias):
        from vtasks.models import TaskRecord

        return TaskRecord.objects.using(alias).filter(id=task_id).values().first()
    from vtasks.drivers.valkey.records import record_view

    key = _task_key(task_id)
    fields = _valkey()[0].hgetall(key) if key else None
    return record_view(task_id, fields) if fields else None


def records(alias: str) -> list[dict[str, Any]]:
    if not is_valkey(alias):
        from vtasks.models import TaskRecord

        return list(TaskRecord.objects.using(alias).values())
    return [r for task_id, _ in _task_keys() if (r := record(alias, task_id)) is not None]


def count(alias: str, **where: Any) -> int:
    """How many tasks are stored, optionally only those whose fields equal ``where``."""
    if not is_valkey(alias):
        from vtasks.models import TaskRecord

        return TaskRecord.objects.using(alias).filter(**where).count()
    if not where:
        return sum(1 for _ in _task_keys())
    return sum(all(r[k] == v for k, v in where.items()) for r in records(alias))


def status(alias: str, task_id: str) -> str | None:
    row = record(alias, task_id)
    return row["status"] if row else None


def update(alias: str, task_id: str, **changes: Any) -> None:
    """Edit a stored task as the ORM would edit its row (JSON columns given as JSON text).

    On Valkey, a call field (``task_path``, ``args``, ``kwargs``, ``options``) is rewritten inside
    the message; JSON text that does not parse is stored as that string, which the worker then
    reports as the wrong type. State fields are hash fields.
    """
    if not is_valkey(alias):
        from vtasks.models import TaskRecord

        TaskRecord.objects.using(alias).filter(id=task_id).update(**changes)
        return
    from vtasks.drivers.valkey.records import to_us
    from vtasks.wire import codec, envelope

    client, _ = _valkey()
    key = _task_key(task_id)
    assert key is not None, f"no task {task_id}"
    body = envelope.decode(client.hget(key, "msg"))
    fields: dict[str, Any] = {}
    for name, value in changes.items():
        if name in ("args", "kwargs", "options"):
            try:
                body[name] = codec.loads(value)
            except ValueError:
                body[name] = value
        elif name in ("task_path", "priority", "backend"):
            body[name] = value
        elif isinstance(value, datetime):
            fields[name] = to_us(value)
        else:
            fields[name] = value
    fields["msg"] = envelope.encode(body)
    client.hset(key, mapping=fields)


def claimed_by(alias: str) -> dict[str, str | None]:
    """Each stored task's claimer."""
    return {r["id"]: r["claimed_by"] for r in records(alias)}


# -- unique locks and processes ------------------------------------------------------------------
def lock_exists(alias: str, key: str) -> bool:
    if not is_valkey(alias):
        from vtasks.models import UniqueLock

        return UniqueLock.objects.using(alias).filter(key=key).exists()
    from vtasks.drivers.valkey.keys import global_keys, queue_keys

    client, prefix = _valkey()
    queues = client.smembers(global_keys(prefix).queues)
    return any(client.exists(queue_keys(prefix, q.decode()).unique(key)) for q in queues)


def any_lock(alias: str) -> bool:
    if not is_valkey(alias):
        from vtasks.models import UniqueLock

        return UniqueLock.objects.using(alias).exists()
    from vtasks.drivers.valkey.keys import glob_escape

    client, prefix = _valkey()
    pattern = "{" + glob_escape(prefix) + ":q:*}:u:*"
    return any(True for _ in client.scan_iter(match=pattern, count=1000))


def process_row(alias: str, process_id: str) -> dict[str, Any] | None:
    if not is_valkey(alias):
        from vtasks.models import ProcessRecord

        return ProcessRecord.objects.using(alias).filter(id=process_id).values().first()
    from vtasks.drivers.valkey.keys import global_keys
    from vtasks.drivers.valkey.records import from_us

    client, prefix = _valkey()
    fields = {
        k.decode(): v.decode()
        for k, v in client.hgetall(global_keys(prefix).process(process_id)).items()
    }
    if not fields:
        return None
    for name in ("started_at", "heartbeat_at"):
        fields[name] = from_us(fields[name])
    fields["pid"] = int(fields["pid"])
    return fields


def process_count(alias: str) -> int:
    if not is_valkey(alias):
        from vtasks.models import ProcessRecord

        return ProcessRecord.objects.using(alias).count()
    from vtasks.drivers.valkey.keys import global_keys

    client, prefix = _valkey()
    return int(client.zcard(global_keys(prefix).processes))


def purged(alias: str, expired: int) -> int:
    """What ``purge()`` returns when ``expired`` results are past their ``expires_at``: Valkey has
    already dropped them itself (a key TTL), so there is nothing left to purge."""
    return 0 if is_valkey(alias) else expired


def held_slots(alias: str) -> int:
    """How many concurrency slots are held, over every key."""
    if not is_valkey(alias):
        from vtasks.models import ConcurrencySlot

        return ConcurrencySlot.objects.using(alias).count()
    from vtasks.drivers.valkey.keys import concurrency_slots, glob_escape

    client, prefix = _valkey()
    pattern = glob_escape(concurrency_slots(prefix, "")[:-1]) + "*"
    return sum(client.hlen(key) for key in client.scan_iter(match=pattern, count=1000))
