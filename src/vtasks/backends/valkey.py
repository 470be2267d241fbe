"""The Valkey backend: tasks are messages in Valkey (or Redis 7), enqueued by one Lua script.

``enqueue`` is one script call that takes the unique key (if any) and pushes the message, so a
duplicate can never slip in between the check and the push; ``enqueue_many`` sends one call per
queue, all in one pipeline. Unlike the database backend, an enqueue does not join a database
transaction: use ``vtasks.enqueue_on_commit`` for that. Finished results expire by themselves
(a key TTL at ``expires_at``), so ``purge()`` only has work with ``older_than``.

A task id does not say which queue holds it, so ``get_result`` looks in every queue ever used
(the ``{P}:queues`` set): one pipeline, fine for the usual handful of queues.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.tasks import TaskResult
from django.tasks.exceptions import TaskResultDoesNotExist
from django.utils import timezone

from vtasks.backends import valkey_tasks as _tasks
from vtasks.backends.base import NewTask, VTasksBackend
from vtasks.backends.valkey_enqueue import (
    EnqueueCalls,
    enqueue_keys,
    script_head,
    stored,
    stored_one,
)
from vtasks.backends.valkey_source import DEFAULT_URL, Source
from vtasks.config import env
from vtasks.drivers.valkey import finished as _finished
from vtasks.drivers.valkey import queues as _queues
from vtasks.drivers.valkey.keys import (
    DEFAULT_PREFIX,
    glob_escape,
    global_keys,
    queue_keys,
)
from vtasks.drivers.valkey.records import from_us, record_view, to_us
from vtasks.drivers.valkey.scripts import SCRIPTS, Call, arun, run
from vtasks.wire import codec

if TYPE_CHECKING:
    from vtasks.core.cron import Schedule

__all__ = ["DEFAULT_URL", "ValkeyBackend"]


class ValkeyBackend(VTasksBackend):
    """``TASKS[alias]["BACKEND"] = "vtasks.backends.valkey.ValkeyBackend"``.

    OPTIONS: ``BROKER_URL`` (``valkey://``, ``valkeys://``, ``redis://``, ``rediss://``; password
    and database number in the URL, TLS files as ``?ssl_ca_certs=...``), ``CLUSTER`` (default
    ``False``), ``PREFIX`` (default ``"vt"``), ``BLOCKING_TIMEOUT`` (seconds an idle worker blocks
    per wait, default 1.0), ``MAX_ATTEMPTS``, ``BACKOFF``, ``RESULT_TTL``.

    Instead of a URL alone: ``CONNECTION_POOL``, a shared ``valkey.asyncio.ConnectionPool`` for
    the async side (``BROKER_URL`` still serves the sync side), or ``cache_alias``, a ``CACHES``
    alias whose backend lends its valkey-py clients through ``get_raw_client(async_client)``.
    Workers never use those objects: they build their own connections of the same kind after
    fork (see ``valkey_source.py``).

    Cluster mode: ``CLUSTER: True``, or a ``valkey+cluster://`` / ``redis+cluster://`` (``s`` for
    TLS) URL naming any one node (database 0 only). The backend and the worker's driver then use
    valkey-py's cluster clients. Each queue's keys share one hash slot and every script stays in
    one slot, so enqueue, claim and finish cost the same round trips as on one server; reads that
    span queues (``get_result``, ``queue_depths``) go out as non-transactional cluster pipelines.

    Queue controls (for ``vtasks status``, the admin and the CLI): ``queue_depths``,
    ``pause_queue``/``resume_queue``, ``clear_queue``, ``retry_failed``/``retry_all_failed``;
    the admin's throughput: ``finished_per_minute``.
    """

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        # No I/O: Django builds an instance per thread and async context; pools are module-level.
        self.source = Source(alias, self.options)
        #: ``None`` with ``cache_alias`` (the cache's clients are borrowed).
        self.url: str | None = self.source.url
        self.cluster = self.source.cluster
        # OPTIONS["PREFIX"] for this alias, else VTASKS_VALKEY_PREFIX (environment, then setting).
        self.prefix: str = (
            self.options.get("PREFIX") or env.value(env.VALKEY_PREFIX_SETTING) or DEFAULT_PREFIX
        )
        #: VTASKS_COMPRESS_THRESHOLD; ``None``: the envelope's default.
        self.compress_threshold: int | None = env.value(env.COMPRESS_THRESHOLD_SETTING)
        self.blocking_timeout = float(self.options.get("BLOCKING_TIMEOUT", 1.0))
        self._enqueue = EnqueueCalls(self.prefix, alias, self.compress_threshold)

    # -- enqueue -------------------------------------------------------------------------------
    def store(self, new: NewTask) -> bool:
        call, sadd = self._enqueue.single(new)
        [reply] = run(self._sync(), [call], sadd)
        return stored_one(reply)

    async def astore(self, new: NewTask) -> bool:
        call, sadd = self._enqueue.single(new)
        client, lane = await self.source.async_client_and_lane()
        [reply] = await arun(client, [call], sadd, lane=lane)
        return stored_one(reply)

    def store_many(
        self, news: Sequence[NewTask], meanwhile: Callable[[], None] | None = None
    ) -> list[bool]:
        if not news:
            if meanwhile is not None:
                meanwhile()
            return []
        calls, sadd, slots = self._enqueue.batch(news)
        results = run(self._sync(), calls, sadd, meanwhile)
        return stored(results, slots, len(news))

    # -- results -------------------------------------------------------------------------------
    def get_result(self, result_id: str) -> TaskResult:
        client = self._sync()
        queues = sorted(client.smembers(global_keys(self.prefix).queues))
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            pipe.hgetall(queue_keys(self.prefix, queue.decode()).task(str(result_id)))
        return self._result(str(result_id), pipe.execute() if queues else [])

    async def aget_result(self, result_id: str) -> TaskResult:
        client = await self.source.async_client()
        queues = sorted(await client.smembers(global_keys(self.prefix).queues))
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            pipe.hgetall(queue_keys(self.prefix, queue.decode()).task(str(result_id)))
        return self._result(str(result_id), await pipe.execute() if queues else [])

    def _result(self, result_id: str, found: list[dict[bytes, bytes]]) -> TaskResult:
        for fields in found:
            if fields:
                record = record_view(result_id, fields)
                if record["backend"] != self.alias or not record["task_path"]:
                    break
                return self.build_result(record)
        raise TaskResultDoesNotExist(result_id)

    def purge(self, *, batch_size: int = 1000, older_than: timedelta | None = None) -> int:
        """Delete results finished before ``older_than`` ago; expired ones are gone already."""
        if older_than is None:
            return 0
        client = self._sync()
        cutoff = to_us(timezone.now() - older_than)
        deleted = 0
        for queue in client.smembers(global_keys(self.prefix).queues):
            pattern = glob_escape(queue_keys(self.prefix, queue.decode()).task_prefix) + "*"
            for keys in _batches(client.scan_iter(match=pattern, count=batch_size), batch_size):
                pipe = client.pipeline(transaction=False)
                for key in keys:
                    pipe.hmget(key, "status", "finished_at")
                old = [
                    key
                    for key, (status, finished) in zip(keys, pipe.execute(), strict=True)
                    if status in (b"SUCCESSFUL", b"FAILED") and finished and int(finished) <= cutoff
                ]
                if old:
                    deleted += client.delete(*old)
        return deleted

    # -- queue controls ------------------------------------------------------------------------
    def queue_depths(self, queues: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """Per queue (every known one by default): ``ready`` (due now), ``delayed``, ``running``,
        ``failed`` (dead letters), ``paused``, and ``oldest_age``: seconds the longest-waiting
        due message has waited since it became due (``None`` when nothing is ready)."""
        return _queues.depths(self._sync(), self.prefix, queues)

    def pause_queue(self, name: str) -> None:
        """Stop claims from ``name`` (enqueues still land); running tasks go on."""
        _queues.pause(self._sync(), self.prefix, name)

    def resume_queue(self, name: str) -> bool:
        """Let workers claim from ``name`` again; whether it was paused."""
        return _queues.resume(self._sync(), self.prefix, name)

    def clear_queue(self, name: str, *, failed: bool = False) -> int:
        """Delete the waiting (ready and delayed) tasks of ``name``, and with ``failed`` its dead
        letters too; never running ones. Returns how many were deleted."""
        return _queues.clear(self._sync(), self.prefix, name, failed=failed)

    def retry_failed(self, task_id: str) -> bool:
        """Put a FAILED task back to READY (errors and attempts kept: it gets one more attempt,
        more if its policy retries that one); ``False`` when it is not FAILED, is gone, or another
        task holds its unique key now."""
        client = self._sync()
        queue = _queues.find_queue(client, self.prefix, str(task_id))
        return queue is not None and _queues.retry(client, self.prefix, queue, [str(task_id)])[0]

    def retry_all_failed(self, queue: str) -> int:
        """``retry_failed`` for every dead letter of ``queue``, oldest first; how many went back."""
        client = self._sync()
        ids = _queues.dead_letters(client, self.prefix, queue)
        return sum(_queues.retry(client, self.prefix, queue, ids))

    def processes(self) -> list[dict[str, Any]]:
        """The process table: every registered vtasks process and its last heartbeat."""
        return _queues.processes(self._sync(), self.prefix)

    def finished_per_minute(
        self, since: datetime, queues: Sequence[str] | None = None
    ) -> dict[tuple[str, datetime, str], int]:
        """Tasks that ended SUCCESSFUL or FAILED per ``(queue, minute, status)``, for the minutes
        from ``since`` to now, of ``queues`` (every known one by default), from the per-minute
        counters the finishing scripts keep for an hour (one pipeline)."""
        client = self._sync()
        names = _queues.known_queues(client, self.prefix) if queues is None else queues
        return _finished.finished_per_minute(client, self.prefix, names, since, timezone.now())

    # -- single tasks, for the Django admin's Valkey adapter (see backends/valkey_tasks.py) -------
    def list_tasks(
        self, state: _tasks.State, *, queue: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` tasks per queue in ``state`` (pending, scheduled, running, failed), as
        mappings with the ``TaskRecord`` field names."""
        return _tasks.list_tasks(self._sync(), self.prefix, state, queue, limit)

    def run_now(self, task_ids: Sequence[str]) -> int:
        """Make waiting (scheduled or retry-delayed) tasks due now; how many were waiting."""
        return _tasks.run_now(self._sync(), self.prefix, task_ids)

    def delete_tasks(self, task_ids: Sequence[str]) -> int:
        """Delete tasks and their records, never a running one; how many were deleted."""
        return _tasks.delete(self._sync(), self.prefix, task_ids)

    def release_orphans(self, claims: Sequence[tuple[str, str]]) -> int:
        """Put ``(task id, claimer)`` tasks still RUNNING under that (dead) claimer back to READY;
        how many went back."""
        return _tasks.release(self._sync(), self.prefix, claims)

    def revoke_waiting(self, task_id: str, error: Mapping[str, str]) -> bool:
        """Make a task that has not started never run: FAILED with ``error`` appended (kept for
        ``FAILED_RESULT_TTL`` seconds if set), its unique key freed. A running task is left alone.
        Whether it was waiting (``vtasks.compat.revoke``)."""
        from vtasks.drivers.valkey.driver import DEFAULT_DLQ_CAP

        ttl = self.options.get("FAILED_RESULT_TTL")
        expires = None if ttl is None else timezone.now() + timedelta(seconds=ttl)
        cap = env.value(env.DLQ_CAP_SETTING) or DEFAULT_DLQ_CAP
        return _tasks.revoke(
            self._sync(), self.prefix, str(task_id), codec.dumps(dict(error)), expires, cap
        )

    def _sync(self) -> Any:
        return self.source.sync_client()

    def create_driver(self) -> Any:
        from vtasks.drivers.valkey.driver import ValkeyDriver

        return ValkeyDriver(
            self.url, prefix=self.prefix, blocking_timeout=self.blocking_timeout,
            cluster=self.cluster, dlq_cap=env.value(env.DLQ_CAP_SETTING),
            connection=self.source.worker_connection(),
        )  # fmt: skip

    # -- recurring schedules (the scheduler's side) ----------------------------------------------
    def fire_slot(self, schedule: Schedule, slot: datetime) -> TaskResult | None:
        """Enqueue ``schedule``'s task for ``slot`` unless some scheduler fired it (or a later one).

        One ``enqueue.lua`` call with its slot guard: the schedule's last-slot key (in the target
        queue's hash slot) is compared, advanced and the message pushed in one atomic step.
        """
        new = self.prepare(self.scheduled_task(schedule), schedule.args, schedule.kwargs)
        k = queue_keys(self.prefix, new.task.queue_name)
        keys = (*enqueue_keys(k), k.schedule(schedule.name))
        message = self._enqueue.message_args(new, to_us(new.enqueued_at), True)
        args = [*script_head(k), 9, *message]
        args += [to_us(slot), _slot_ttl_ms(schedule, slot)]
        before = [("SADD", global_keys(self.prefix).queues, new.task.queue_name)]
        (flags,) = run(self._sync(), [Call(SCRIPTS["enqueue"], keys, args)], before)
        if not flags or not int(flags[0]):
            return None  # fired already; or a unique task still queued: the slot is spent
        return self._enqueued(new)

    def last_slot(self, schedule: Schedule) -> datetime | None:
        """The latest slot ``schedule`` fired into its queue (any scheduler), or ``None``."""
        queue = self.scheduled_task(schedule).queue_name
        return from_us(self._sync().get(queue_keys(self.prefix, queue).schedule(schedule.name)))

    # -- dynamic schedules (vtasks.schedules) ----------------------------------------------------
    def store_schedule(self, key: str, entry: Mapping[str, Any]) -> None:
        """Add or replace the dynamic schedule ``key`` (a ``VTASKS_SCHEDULE``-style entry)."""
        self._sync().hset(global_keys(self.prefix).schedules, key, codec.dumps(dict(entry)))

    def delete_schedule(self, key: str) -> bool:
        """Remove the dynamic schedule ``key``; whether it existed."""
        return bool(self._sync().hdel(global_keys(self.prefix).schedules, key))

    def stored_schedules(self) -> dict[str, dict[str, Any]]:
        """Every dynamic schedule, by key, as ``VTASKS_SCHEDULE``-style entries."""
        stored = self._sync().hgetall(global_keys(self.prefix).schedules)
        return {key.decode(): codec.loads(stored[key]) for key in sorted(stored)}


#: How long a schedule's last-slot key outlives its last firing: long enough to catch up after
#: any ordinary downtime, short enough that a removed schedule's key does not stay forever.
_SLOT_KEY_FLOOR = 7 * 24 * 3600.0
_SLOT_KEY_PERIODS = 3


def _slot_ttl_ms(schedule: Schedule, slot: datetime) -> int:
    period = (schedule.next_slot(slot) - slot).total_seconds()
    return math.ceil(max(_SLOT_KEY_FLOOR, _SLOT_KEY_PERIODS * period) * 1000)


def _batches(items: Any, size: int) -> Any:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
