"""What an enqueue sends to Valkey: the ``enqueue.lua`` calls for one task or for a batch.

A batch is grouped by queue and cut into chunks that grow from a small first one, so the server
starts on the first messages while the later ones are still being encoded. Each chunk takes the
script's cheapest form that holds its messages (see ``scripts/enqueue.lua``): two values a message
when they share one task and one enqueue time, six when they only have no unique key, nine when
some have one.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from vtasks.backends.base import NewTask
from vtasks.drivers.valkey.exchange import Packed, bulk, pack
from vtasks.drivers.valkey.keys import QueueKeys, global_keys, queue_keys
from vtasks.drivers.valkey.records import KWARGS_FIELD, body_parts, message_json, to_us
from vtasks.drivers.valkey.scripts import SCRIPTS, WAKE_CAP, After, Call
from vtasks.wire import envelope

#: Messages per script call: bounds how long one call holds the server, and lets a bulk
#: enqueue send its first chunks while the later ones are still being encoded. A queue's first
#: call takes ``FIRST_CHUNK`` messages and each next one twice as many, up to ``CHUNK``: the
#: server starts as soon as a few are encoded, and each call it runs (about 6 µs a message)
#: lasts longer than encoding the next one here (about 3 µs a message).
CHUNK = 200
FIRST_CHUNK = 25

#: Plain commands sent with the scripts: the SADD that records the queue names in ``{P}:queues``.
Commands = list[After]

#: A single task's stride-2 call: 15 fixed values (``EVALSHA``, the sha, the key count, 7 keys,
#: ``script_head``'s 4 and the stride), then its own 6 (``shared_values``, the id, the message).
_SINGLE_TAIL = b"$%d\r\n%b\r\n" * 6
#: Queues whose fixed parts a backend keeps packed (past this, it starts over).
_HEADS_KEPT = 1024


@dataclass(frozen=True, slots=True)
class QueueHead:
    """What every single enqueue into one queue sends alike, packed once (a libvalkey packing
    formats each value's length with ``sprintf``: 15 of a call's 21 values never change)."""

    keys: tuple[str, ...]
    #: ``script_head``'s four values.
    first_args: tuple[Any, ...]
    #: The stride-2 call's array header and fixed values, packed.
    packed_prefix: bytes
    sadd: Packed

    @classmethod
    def of(cls, prefix: str, queue: str) -> QueueHead:
        k = queue_keys(prefix, queue)
        keys, first_args = enqueue_keys(k), tuple(script_head(k))
        fixed = ("EVALSHA", SCRIPTS["enqueue"].sha, len(keys), *keys, *first_args, 2)
        packed_prefix = b"*%d\r\n%b" % (len(fixed) + 6, bulk(fixed))
        return cls(keys, first_args, packed_prefix, pack("SADD", global_keys(prefix).queues, queue))


class EnqueueCalls:
    """Builds the calls of one backend (its key prefix, alias and compression threshold)."""

    def __init__(self, prefix: str, alias: str, compress_threshold: int | None) -> None:
        self.prefix = prefix
        self.alias = alias
        self.compress_threshold = compress_threshold
        self._heads: dict[str, QueueHead] = {}

    def single(self, new: NewTask) -> tuple[Call, Commands]:
        """One task's call (stride 2, or 9 with a unique key) and its SADD: what ``batch`` makes
        of a batch of one, without the grouping and chunking. A stride-2 call comes packed."""
        queue = new.task.queue_name
        queue_head = self._heads.get(queue)
        if queue_head is None:
            if len(self._heads) >= _HEADS_KEPT:
                self._heads.clear()
            queue_head = self._heads[queue] = QueueHead.of(self.prefix, queue)
        enqueued_us = to_us(new.enqueued_at)
        if new.unique_key:
            args = (*queue_head.first_args, 9, *self.message_args(new, enqueued_us, True))
            return Call(SCRIPTS["enqueue"], queue_head.keys, args), [queue_head.sadd]
        values = (*shared_values(new, enqueued_us), new.id, self.encode(new, enqueued_us))
        priority, available_at, delayed, max_attempts, task_id, message = values
        p, a, d, m = b"%d" % priority, b"%d" % available_at, delayed.encode(), b"%d" % max_attempts
        i = task_id.encode()
        packed = queue_head.packed_prefix + _SINGLE_TAIL % (
            len(p), p, len(a), a, len(d), d, len(m), m, len(i), i, len(message), message,
        )  # fmt: skip
        args = (*queue_head.first_args, 2, *values)
        return Call(SCRIPTS["enqueue"], queue_head.keys, args, packed), [queue_head.sadd]

    def batch(self, news: Sequence[NewTask]) -> tuple[Iterator[Call], Commands, list[list[int]]]:
        """One call per queue and chunk (made lazily: each is encoded while the server runs the
        one before), the SADD of the queue names, and which message index each call's results
        belong to (see ``stored``)."""
        by_queue: dict[str, list[int]] = defaultdict(list)
        for index, new in enumerate(news):
            by_queue[new.task.queue_name].append(index)
        slots = [chunk for indexes in by_queue.values() for chunk in chunked(indexes)]
        sadd: Commands = [("SADD", global_keys(self.prefix).queues, *by_queue)]
        return self._calls(news, slots), sadd, slots

    def _calls(self, news: Sequence[NewTask], slots: list[list[int]]) -> Iterator[Call]:
        enqueued_at, enqueued_us = None, 0  # a bulk enqueue's tasks share one enqueue time
        for chunk in slots:
            head = news[chunk[0]]
            k = queue_keys(self.prefix, head.task.queue_name)
            args = script_head(k)
            if shares_fields(news, chunk):
                if head.enqueued_at is not enqueued_at:
                    enqueued_at, enqueued_us = head.enqueued_at, to_us(head.enqueued_at)
                args += (2, *shared_values(head, enqueued_us))
                args += self._shared_messages(news, chunk, enqueued_us)
            else:
                unique = any(news[index].unique_key for index in chunk)
                args.append(9 if unique else 6)
                for index in chunk:
                    new = news[index]
                    if new.enqueued_at is not enqueued_at:
                        enqueued_at, enqueued_us = new.enqueued_at, to_us(new.enqueued_at)
                    args += self.message_args(new, enqueued_us, unique)
            yield Call(SCRIPTS["enqueue"], enqueue_keys(k), args)

    def _shared_messages(
        self, news: Sequence[NewTask], chunk: list[int], enqueued_us: int
    ) -> list[Any]:
        """Ids and messages of a stride-2 chunk (one task, one enqueue time): the body's text
        around each message's arguments is put together once for the chunk."""
        first = news[chunk[0]]
        task, plan = first.task, first.plan
        head, tail = body_parts(
            plan.task_path, self.alias, task.queue_name, task.priority,
            None if task.run_after is None else to_us(task.run_after), enqueued_us,
        )  # fmt: skip
        options = plan.options_json.encode()
        join, wrap, threshold = b"".join, envelope.wrap, self.compress_threshold
        values: list[Any] = []
        for index in chunk:
            new = news[index]
            own = new.options_json  # a concurrency key's call has options of its own
            body = join((
                head, new.args_json, KWARGS_FIELD, new.kwargs_json, tail,
                own.encode() if own else options, b"}",
            ))  # fmt: skip
            values += (new.id, wrap(body, threshold=threshold))
        return values

    def encode(self, new: NewTask, enqueued_us: int) -> bytes:
        """One message's envelope (the call, with times as integer microseconds)."""
        task, plan = new.task, new.plan
        body = message_json(  # in order: keywords cost more than building the body
            plan.task_path,
            self.alias,
            task.queue_name,
            task.priority,
            new.args_json,
            new.kwargs_json,
            None if task.run_after is None else to_us(task.run_after),
            enqueued_us,
            new.options_json or plan.options_json,
        )
        return envelope.wrap(body, threshold=self.compress_threshold)

    def message_args(self, new: NewTask, enqueued_us: int, unique: bool) -> list[Any]:
        """One message's values: 9 in a chunk with unique keys, else 6."""
        plan = new.plan
        values = [new.id, self.encode(new, enqueued_us), *shared_values(new, enqueued_us)]
        if unique:
            ttl = "" if not plan.unique_ttl else str(max(1, math.ceil(plan.unique_ttl * 1000)))
            values += (
                new.unique_key or "", ttl if new.unique_key else "",
                "1" if plan.release_unique_on_finish else "0",
            )  # fmt: skip
        return values


def stored(results: list[Any], slots: list[list[int]], count: int) -> list[bool]:
    """Per message of a batch: whether it was stored (``False``: its unique key was taken).

    A call's reply is its count of messages when none had a unique key (all were stored), else
    a flag per message (see ``enqueue.lua``)."""
    if all(type(reply) is int or reply.count(1) == len(reply) for reply in results):
        return [True] * count  # the usual batch: all stored
    flags_by_index = [True] * count
    for reply, indexes in zip(results, slots, strict=True):
        if type(reply) is not int:
            for index, flag in zip(indexes, reply, strict=True):
                flags_by_index[index] = bool(int(flag))
    return flags_by_index


def stored_one(reply: Any) -> bool:
    """Whether a single task's call stored it: its reply is a count (no unique key) or a flag."""
    return reply == 1 if type(reply) is int else int(reply[0]) == 1


def shared_values(new: NewTask, enqueued_us: int) -> tuple[int, int, str, int]:
    """``new``'s priority, available_at (µs), delayed flag and max_attempts, as ``enqueue.lua``
    takes them (per message, or once for a stride-2 chunk)."""
    run_after = new.task.run_after
    if run_after is None:
        return new.task.priority, enqueued_us, "0", new.plan.max_attempts
    return new.task.priority, to_us(run_after), "1", new.plan.max_attempts


def shares_fields(news: Sequence[NewTask], chunk: list[int]) -> bool:
    """Whether ``chunk``'s messages share priority, available_at, delayed and max_attempts
    (one task, one enqueue time) and none has a unique key: ``enqueue.lua``'s stride 2."""
    head = news[chunk[0]]
    task, enqueued_at = head.task, head.enqueued_at
    for index in chunk:
        new = news[index]
        if new.task is not task or new.enqueued_at is not enqueued_at or new.unique_key:
            return False
    return True


def chunked(indexes: list[int]) -> Iterator[list[int]]:
    """``indexes`` in chunks of ``FIRST_CHUNK``, then twice as many each time, up to ``CHUNK``."""
    start, size = 0, FIRST_CHUNK
    while start < len(indexes):
        yield indexes[start : start + size]
        start, size = start + size, min(size * 2, CHUNK)


def script_head(k: QueueKeys) -> list[Any]:
    """``enqueue.lua``'s first four values for ``k``'s queue; the stride and messages follow."""
    return [k.task_prefix, k.unique_prefix, WAKE_CAP, k.inbox_prefix]


def enqueue_keys(k: QueueKeys) -> tuple[str, ...]:
    """``enqueue.lua``'s keys (without the optional slot guard)."""
    return (k.ready, k.delayed, k.seq, k.wake, k.paused, k.idle, k.running)
