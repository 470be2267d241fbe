"""One stored task in each state the admin shows, on any TASKS alias (database or Valkey)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from django.tasks import task_backends
from django.utils import timezone

from tests import tasks
from tests.helpers import work
from vtasks.drivers.base import ProcessInfo

ALIVE, GHOST = "admin-test-alive", "admin-test-ghost"


def make_states(alias: str) -> dict[str, str]:
    """Task ids by state: failed (ran and raised), pending, scheduled, running (claimed by a live
    registered process) and orphaned (claimed by a process that never registered)."""
    ids = {"failed": tasks.fail.using(backend=alias).enqueue("kaput").id}
    work(alias)
    ids["pending"] = tasks.add.using(backend=alias).enqueue(1, 2).id
    later = timezone.now() + timedelta(hours=1)
    ids["scheduled"] = tasks.add.using(backend=alias, run_after=later).enqueue(3, 4).id
    ids["running"] = tasks.add.using(backend=alias, queue_name="busy").enqueue(5, 6).id
    ids["orphaned"] = tasks.add.using(backend=alias, queue_name="lost").enqueue(7, 8).id
    asyncio.run(_claim(alias, "busy", ALIVE, register=True))
    asyncio.run(_claim(alias, "lost", GHOST, register=False))
    return ids


async def _claim(alias: str, queue: str, process_id: str, *, register: bool) -> None:
    driver = task_backends[alias].create_driver()
    await driver.open()
    try:
        if register:
            info = ProcessInfo(id=process_id, kind="worker", hostname="test", pid=1, queues=[queue])
            await driver.register(info)
        claims = await driver.claim([queue], 1, process_id)
        assert len(claims) == 1
    finally:
        await driver.close()
