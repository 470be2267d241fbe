"""``finish.lua``'s two forms in one call: a plain success (kept, no expiry) sends four values and
leaves the record's errors as they are; every other outcome sends nine. Mixed in one batch over two
queues, each outcome lands on its own record and a stale one is refused by its fence."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import timedelta

from django.tasks import task_backends
from django.utils import timezone

from tests import tasks
from tests.contract.test_valkey_queues import ERROR
from vtasks.drivers.base import Outcome
from vtasks.drivers.valkey.client import sync_client
from vtasks.drivers.valkey.driver import ValkeyDriver
from vtasks.drivers.valkey.keys import queue_keys
from vtasks.drivers.valkey.records import outcome_args, plain_success


def test_plain_successes_and_other_outcomes_in_one_batch(valkey: str) -> None:
    backend = task_backends["valkey"]
    for queue in ("one", "two"):
        for n in range(4):
            tasks.add.using(backend=valkey, queue_name=queue).enqueue(n, 1)
    earlier = '[{"exception_class_path": "builtins.ValueError", "traceback": "attempt 1\\n"}]'

    async def run() -> tuple[list[Outcome], list[str]]:
        driver: ValkeyDriver = backend.create_driver()
        await driver.open()
        try:
            a, b, c, d, e, f, g, h = await driver.claim(["one", "two"], 8, "p-1")
            # A retried attempt's success: its record holds the earlier errors already.
            sync_client(backend.url).hset(key(a.queue_name, a.id), "errors", earlier)
            a.errors = json.loads(earlier)
            now = timezone.now()
            later = now + timedelta(hours=1)
            outcomes = [
                Outcome(a, "SUCCESSFUL", now, "1"),
                Outcome(b, "FAILED", now, error=ERROR),
                Outcome(c, "SUCCESSFUL", now, "3", expires_at=later),
                Outcome(dataclasses.replace(d, attempt=7), "SUCCESSFUL", now, "4"),  # stale
                Outcome(e, "SUCCESSFUL", now, "5"),
                Outcome(f, "READY", now, error=ERROR, retry_at=later),
                Outcome(g, "SUCCESSFUL", now, "7"),
                Outcome(h, "SUCCESSFUL", now, None),
            ]
            return outcomes, await driver.finish(outcomes, "p-1")
        finally:
            await driver.close()

    outcomes, refused = asyncio.run(run())
    assert [plain_success(o) is not None for o in outcomes] == [
        True, False, False, True, True, False, True, True,
    ]  # fmt: skip
    assert len(outcome_args(outcomes[1], "p-1")) == 9
    assert refused == [outcomes[3].claim.id]
    a, b, c, d, e, f, g, h = (stored(o.claim.queue_name, o.claim.id) for o in outcomes)
    stale_queue = outcomes[3].claim.queue_name
    assert d["status"] == "RUNNING" and d["claimed_by"] == "p-1"  # refused: untouched
    for record, value in ((a, "1"), (c, "3"), (e, "5"), (g, "7")):
        assert record["status"] == "SUCCESSFUL" and record["return_value"] == value
        assert "claimed_by" not in record and "finished_at" in record
    assert h["status"] == "SUCCESSFUL" and "return_value" not in h
    assert a["errors"] == earlier  # kept as they were, not rewritten
    assert "expires_at" in c and "expires_at" not in e
    assert b["status"] == "FAILED" and json.loads(b["errors"]) == [ERROR]
    assert f["status"] == "READY" and json.loads(f["errors"]) == [ERROR]
    for queue in ("one", "two"):
        running = sync_client(backend.url).zrange(queue_keys(backend.prefix, queue).running, 0, -1)
        assert [i.decode() for i in running] == ([refused[0]] if queue == stale_queue else [])


def key(queue: str, task_id: str) -> str:
    return queue_keys(task_backends["valkey"].prefix, queue).task(task_id)


def stored(queue: str, task_id: str) -> dict[str, str]:
    raw = sync_client(task_backends["valkey"].url).hgetall(key(queue, task_id))
    return {k.decode(): v.decode() for k, v in raw.items()}
