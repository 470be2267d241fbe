"""A real worker names the async task that blocks its event loop, and carries on with the rest."""

from __future__ import annotations

import logging
import threading

from django.tasks import TaskResultStatus
from prometheus_client import CollectorRegistry

from tests import tasks
from tests.helpers import work
from vtasks.observability.metrics import WorkerMetrics


def test_a_task_blocking_the_loop_is_named_and_the_worker_finishes_everything(alias, caplog):
    caplog.set_level(logging.WARNING, logger="vtasks.worker")
    blocker = tasks.blocks_the_loop.using(backend=alias).enqueue(1.0)
    others = [tasks.async_add.using(backend=alias).enqueue(i, 1) for i in range(4)]
    others.append(tasks.add.using(backend=alias).enqueue(2, 2))
    registry = CollectorRegistry()

    worker = work(
        alias, observer=WorkerMetrics(registry), alive_threshold=5, loop_block_threshold=0.3
    )

    reports = [
        r for r in caplog.records
        if getattr(r, "vtasks", {}).get("event") == "loop_blocked"
        and r.vtasks["task_id"] == blocker.id  # type: ignore[attr-defined]
    ]  # fmt: skip
    assert len(reports) == 1, [r.getMessage() for r in caplog.records]
    message = reports[0].getMessage()
    assert f"task tests.tasks.blocks_the_loop (id {blocker.id})" in message
    assert "in blocks_the_loop" in message and "time.sleep(seconds)" in message
    backs = [r.getMessage() for r in caplog.records if "runs again after" in r.getMessage()]
    assert any("tests.tasks.blocks_the_loop" in line for line in backs), backs
    labels = {"task_name": "tests.tasks.blocks_the_loop"}
    assert registry.get_sample_value("vtasks_event_loop_blocked_total", labels) == 1

    assert worker.processed == 6
    for result in [blocker, *others]:
        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL, result.errors
    assert blocker.return_value == "unblocked"
    assert [r.return_value for r in others] == [1, 2, 3, 4, 4]
    assert not [t for t in threading.enumerate() if t.name == "vtasks-loopwatch"]
