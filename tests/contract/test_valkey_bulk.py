"""Bulk enqueue on Valkey in chunks: growing from a small first one, with two values a message
where the chunk's messages share one task and enqueue time, six where they only have no unique
key, nine where some have; all stored alike and claimed in order."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.tasks import task_backends
from django.utils import timezone

from tests import tasks
from tests.contract.conftest import new_valkey_driver
from vtasks.backends.valkey_enqueue import CHUNK, FIRST_CHUNK, chunked, shares_fields
from vtasks.drivers.valkey.client import sync_client
from vtasks.drivers.valkey.keys import queue_keys
from vtasks.drivers.valkey.records import to_us
from vtasks.drivers.valkey.scripts import WAKE_CAP
from vtasks.wire import envelope

N = 60  # over FIRST_CHUNK: two chunks


def test_chunks_grow_from_a_small_first_one() -> None:
    sizes = [len(chunk) for chunk in chunked(list(range(1000)))]
    assert sizes[:4] == [FIRST_CHUNK, 2 * FIRST_CHUNK, 4 * FIRST_CHUNK, CHUNK]
    assert max(sizes) == CHUNK and sum(sizes) == 1000
    assert [i for chunk in chunked(list(range(1000))) for i in chunk] == list(range(1000))
    assert list(chunked([])) == [] and list(chunked([7])) == [[7]]


def _calls(queue: str) -> list[tuple[Any, tuple[Any, ...], dict[str, Any]]]:
    later = timezone.now() + timedelta(hours=1)
    return [
        (
            tasks.add.using(
                backend="valkey",
                queue_name=queue,
                priority=(i % 3) - 1,
                run_after=later + timedelta(seconds=i) if i % 10 == 0 else None,
            ),
            (i, i),
            {},
        )  # fmt: skip
        for i in range(N)
    ]


def _state(queue: str, ids: list[str]) -> dict[str, Any]:
    backend = task_backends["valkey"]
    client, k = sync_client(backend.url), queue_keys(backend.prefix, queue)
    records = [
        {f.decode(): v for f, v in client.hgetall(k.task(task_id)).items()} for task_id in ids
    ]
    ready = [m.decode() for m in client.zrange(k.ready, 0, -1)]
    delayed = [m.decode() for m in client.zrange(k.delayed, 0, -1)]
    first = int(records[ids.index(delayed[0])]["available_at"])
    return {
        "fields": [sorted(r) for r in records],
        "status": [r["status"] for r in records],
        "max_attempts": [r["max_attempts"] for r in records],
        "ready": [ids.index(m) for m in ready if m in ids],  # in order of score
        "delayed": [ids.index(m) for m in delayed],
        "delayed_at": [int(records[ids.index(m)]["available_at"]) - first for m in delayed],
        "tokens": client.llen(k.wake),
    }


def test_chunks_with_and_without_unique_keys_store_the_same(valkey: str) -> None:
    backend = task_backends["valkey"]
    short = [r.id for r in backend.enqueue_many(_calls("short"))]
    unique = tasks.add.using(backend="valkey", queue_name="long", unique=True)
    results = backend.enqueue_many([(unique, (0, 0), {}), *_calls("long")])
    assert all(results)
    long = [r.id for r in results[1:]]
    assert _state("short", short)["fields"][1] == [
        "available_at",
        "max_attempts",
        "msg",
        "score",
        "status",
    ]
    by_six, by_nine = _state("short", short), _state("long", long)
    assert by_six == by_nine
    assert by_six["delayed"] == list(range(0, N, 10))
    assert by_six["delayed_at"] == [i * 1_000_000 for i in range(0, N, 10)]
    assert by_six["tokens"] == WAKE_CAP


async def test_a_bulk_over_several_chunks_is_claimed_by_priority_then_in_order(
    valkey: str,
) -> None:
    backend = task_backends["valkey"]
    priorities = [0, 5, -5] * 150
    calls = [
        (tasks.add.using(backend="valkey", priority=p), (i, i), {})
        for i, p in enumerate(priorities)
    ]
    ids = [r.id for r in backend.enqueue_many(calls)]
    driver = new_valkey_driver()
    await driver.open()
    try:
        claimed = [c.id for c in await driver.claim(["default"], len(ids), "p-1")]
    finally:
        await driver.close()
    assert claimed == [ids[i] for p in (5, 0, -5) for i, q in enumerate(priorities) if q == p]


def _strides(backend: Any, calls: list[tuple[Any, tuple[Any, ...], dict[str, Any]]]) -> list[int]:
    now = timezone.now()
    news = [backend.prepare(task, args, kwargs, now=now) for task, args, kwargs in calls]
    enqueue_calls, _, _ = backend._enqueue.batch(news)
    return [call.args[4] for call in enqueue_calls]


def test_a_chunk_of_one_task_sends_what_its_messages_share_once(valkey: str) -> None:
    backend = task_backends["valkey"]
    shared = tasks.add.using(backend="valkey", priority=7)
    assert _strides(backend, [(shared, (i, i), {}) for i in range(N)]) == [2, 2]
    mixed = [(shared, (i, i), {}) for i in range(N)]
    mixed[3] = (tasks.add.using(backend="valkey", priority=7), (3, 3), {})  # equal, not the same
    assert _strides(backend, mixed) == [6, 2]
    unique = tasks.add.using(backend="valkey", unique=True)
    assert _strides(backend, [(unique, (i, i), {}) for i in range(3)]) == [9]
    news = [backend.prepare(shared, (i, i), {}) for i in range(2)]  # two enqueue times
    assert not shares_fields(news, [0, 1]) and shares_fields(news, [1])


def test_shared_and_per_message_values_store_the_same(valkey: str) -> None:
    """The same calls, once as one task object (stride 2) and once as equal copies (stride 6)."""
    backend = task_backends["valkey"]
    later = timezone.now() + timedelta(hours=1)
    for options in ({"priority": 9}, {"priority": -4, "run_after": later}):
        one = tasks.add.using(backend="valkey", queue_name="one", **options)
        ids_one = [r.id for r in backend.enqueue_many([(one, (i, i), {}) for i in range(N)])]
        copies = [
            (tasks.add.using(backend="valkey", queue_name="copies", **options), (i, i), {})
            for i in range(N)
        ]
        ids_copies = [r.id for r in backend.enqueue_many(copies)]
        if "run_after" in options:  # every message waits in the delayed set, at one time
            state_one, state_copies = _state("one", ids_one), _state("copies", ids_copies)
            for state in (state_one, state_copies):  # equal times: the zset orders them by id
                assert sorted(state.pop("delayed")) == list(range(N)) and state["ready"] == []
            assert state_one == state_copies and set(state_one["delayed_at"]) == {0}
        else:
            client, k = sync_client(backend.url), queue_keys(backend.prefix, "one")
            records = [client.hgetall(k.task(task_id)) for task_id in ids_one]
            assert {r[b"status"] for r in records} == {b"READY"}
            assert [m.decode() for m in client.zrange(k.ready, 0, -1)] == ids_one
            scores = [int(r[b"score"]) for r in records]
            assert scores == sorted(scores) and scores[0] >> 44 == 100 - 9
            copies_k = queue_keys(backend.prefix, "copies")
            assert [m.decode() for m in client.zrange(copies_k.ready, 0, -1)] == ids_copies
            assert sorted(records[0]) == sorted(client.hgetall(copies_k.task(ids_copies[0])))


def test_a_shared_chunks_messages_are_those_a_single_enqueue_writes(valkey: str) -> None:
    """A stride-2 chunk puts each body together around its arguments' JSON once per chunk: byte
    for byte the message ``encode`` writes for the same call, with per-call options (a
    concurrency key), keyword arguments, a delay and a body large enough to be compressed."""
    backend = task_backends["valkey"]
    later = timezone.now() + timedelta(hours=1)
    now = timezone.now()
    for task, calls in (
        (tasks.per_account.using(backend="valkey"),
         [(("p",), {"account_id": i % 3, "seconds": 0.5}) for i in range(30)]),
        (tasks.add.using(backend="valkey", run_after=later, priority=-3),
         [((i, "é" * (i * 100)), {}) for i in range(30)]),
    ):  # fmt: skip
        news = [backend.prepare(task, args, kwargs, None, now) for args, kwargs in calls]
        enqueue_calls, _, _ = backend._enqueue.batch(news)
        enqueue_calls = list(enqueue_calls)
        assert [call.args[4] for call in enqueue_calls] == [2, 2]
        messages = [m for call in enqueue_calls for m in call.args[10::2]]
        enqueued_us = to_us(now)
        assert messages == [backend._enqueue.encode(new, enqueued_us) for new in news]
        assert any(m[1] == envelope.ZSTD for m in messages) == (task.name == "add")
        bodies = [envelope.decode(m) for m in messages]
        assert [(b["args"], b["kwargs"]) for b in bodies] == [(list(a), k) for a, k in calls]
