"""Secrets stay secret: passwords in the DATABASES and broker URL settings appear in no output of
``vtasks check``/``status``/``worker`` (logs at DEBUG included), nor in the OS process table, nor in
vtasks' own process table."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.tasks import task_backends

from tests import storage
from tests.helpers import ROOT, process_table, stop_process, wait_for
from tests.secret_settings import SECRET

pytestmark = pytest.mark.timeout(120)

CLI = [sys.executable, "-m", "vtasks.cli.main", "--settings", "tests.secret_settings",
       "--pythonpath", str(ROOT)]  # fmt: skip


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "VTASKS_LOG_LEVEL": "DEBUG"}
    return subprocess.run(
        [*CLI, "--log-level", "DEBUG", *args], capture_output=True, text=True, timeout=60, env=env
    )


@pytest.fixture(params=["pg", "valkey"], ids=["postgres", "valkey"])
def secret_alias(request: pytest.FixtureRequest):
    from tests.conftest import storage_for

    yield from storage_for(request.param)


def test_check_does_not_show_secrets(secret_alias, tmp_path):
    config = tmp_path / "vtasks.yml"
    config.write_text(f"backend: {secret_alias}\n")
    done = run("check", "--config", str(config))
    assert "configuration is valid" in done.stdout, done.stderr
    assert SECRET not in done.stdout + done.stderr


def test_status_does_not_show_secrets(secret_alias):
    done = run("status", "--backend", secret_alias)
    assert SECRET not in done.stdout + done.stderr


def test_a_worker_leaks_no_secret_to_its_logs_or_either_process_table(secret_alias, tmp_path):
    log = tmp_path / "worker.log"
    env = {**os.environ, "VTASKS_LOG_LEVEL": "DEBUG"}
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [*CLI, "--log-level", "DEBUG", "worker", "--backend", secret_alias], env=env,
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        wait_for(lambda: storage.process_count(secret_alias) == 1, what="the worker to register")
        assert SECRET not in repr(task_backends[secret_alias].processes())
        assert SECRET not in process_table()
    finally:
        stop_process(worker)
    text = log.read_text(errors="replace")
    assert text, "the worker logged nothing at DEBUG"
    assert SECRET not in text, text[-2000:]
