"""A ``vtasks worker`` process runs its tasks with the cyclic collector on and its start-up heap
frozen (the command pauses the collector only while it starts: ``vtasks.core.heap``)."""

from __future__ import annotations

import pytest

from tests import tasks
from tests.helpers import spawn_worker


@pytest.mark.parametrize("backend", ["default", "valkey"], ids=["sqlite", "valkey"])
def test_tasks_run_with_the_collector_on_and_the_start_up_heap_frozen(backend, tmp_path):
    from tests.conftest import storage_for

    for alias in storage_for(backend):
        result = tasks.collector_state.using(backend=alias).enqueue()
        log = tmp_path / "worker.log"
        worker = spawn_worker(alias, "--burst", "--concurrency", "1", log=log)
        assert worker.wait(timeout=90) == 0, log.read_text()[-3000:]
        result.refresh()
        assert result.status == "SUCCESSFUL", result.errors
        assert result.return_value == {"enabled": True, "frozen": True}
