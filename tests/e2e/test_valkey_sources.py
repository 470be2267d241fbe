"""A real ``vtasks worker`` process whose settings give the Valkey backend the project's own
connections (``CONNECTION_POOL``, ``cache_alias``): the pool object in its settings is never used
by the worker's driver, which builds connections of the same kind for itself."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.tasks import TaskResultStatus

from tests import tasks
from tests.conftest import storage_for
from tests.helpers import ROOT


@pytest.fixture
def valkey():
    yield from storage_for("valkey")


@pytest.mark.parametrize("source", ["pool", "cache"])
def test_a_worker_process_runs_tasks_with_the_projects_connections(valkey, source, tmp_path):
    results = [tasks.add.using(backend=valkey).enqueue(i, i) for i in range(5)]
    log = tmp_path / "worker.log"
    command = [
        sys.executable, "-m", "vtasks.cli.main", "--settings", "tests.valkey_sources_settings",
        "--pythonpath", str(ROOT), "worker", "--backend", valkey, "--burst",
    ]  # fmt: skip
    env = {**os.environ, "VTASKS_TEST_VALKEY_SOURCE": source}
    with open(log, "wb") as out:
        done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=60)
    assert done.returncode == 0, log.read_text()[-2000:]
    for i, result in enumerate(results):
        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 2 * i
