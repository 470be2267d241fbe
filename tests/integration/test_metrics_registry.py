"""An embedded worker (``vtasks.asgi``) records into the host application's default registry,
enqueues included while it runs; a web process that did not opt in sends no signal for them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.tasks.signals import task_enqueued
from prometheus_client import REGISTRY

from tests import tasks
from tests.conftest import storage_for
from vtasks.asgi import WorkerApplication


@pytest.fixture(params=["default", "valkey"], ids=["sqlite", "valkey"])
def alias(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from storage_for(request.param)


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def django_like(scope: Any, receive: Any, send: Any) -> None:
    raise ValueError("Django's ASGIHandler takes no lifespan")


async def test_the_embedded_worker_records_into_the_default_registry(alias):
    processed = "vtasks_tasks_processed_total"
    ok = {"task_name": "tests.tasks.add", "queue": "default", "status": "SUCCESSFUL"}
    failed = {"task_name": "tests.tasks.fail", "queue": "default", "status": "FAILED"}
    submitted = {"task_name": "tests.tasks.add", "queue": "default"}
    before = (value(processed, **ok), value(processed, **failed))
    before_submitted = value("vtasks_tasks_submitted_total", **submitted)
    app = WorkerApplication(
        django_like, backend=alias, queues=("default",), concurrency=2, metrics=True
    )
    to_app: asyncio.Queue[dict] = asyncio.Queue()
    from_app: asyncio.Queue[dict] = asyncio.Queue()
    await to_app.put({"type": "lifespan.startup"})
    server = asyncio.create_task(app({"type": "lifespan"}, to_app.get, from_app.put))
    assert (await from_app.get())["type"] == "lifespan.startup.complete"

    def enqueue() -> None:
        try:
            for i in range(5):
                tasks.add.using(backend=alias).enqueue(i, i)
            tasks.fail.using(backend=alias).enqueue()
        finally:
            connections.close_all()  # this thread's

    await sync_to_async(enqueue, thread_sensitive=False)()
    for _ in range(200):
        if value(processed, **failed) > before[1] and value(processed, **ok) >= before[0] + 5:
            break
        await asyncio.sleep(0.05)
    assert value(processed, **ok) == before[0] + 5
    assert value(processed, **failed) == before[1] + 1
    assert value("vtasks_tasks_submitted_total", **submitted) == before_submitted + 5
    await to_app.put({"type": "lifespan.shutdown"})
    assert (await from_app.get())["type"] == "lifespan.shutdown.complete"
    await server
    # Its shutdown disconnected the enqueue counter: enqueues send no signal for it any more.
    assert not any("vtasks.metrics" in str(key) for key, *_ in task_enqueued.receivers)
