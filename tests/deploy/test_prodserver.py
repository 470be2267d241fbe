"""``vtasks.contrib.prodserver``: django-prodserver's ``worker`` command runs ``vtasks supervise``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests import tasks
from tests.helpers import ROOT, lines
from vtasks.cli.main import _parser
from vtasks.contrib import prodserver

QUEUE = "prodserver"


def test_the_backend_execs_vtasks_supervise_with_its_args(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(prodserver.os, "execv", lambda path, argv: calls.append((path, argv)))
    monkeypatch.setattr(prodserver.sys, "path", ["/srv/app", *sys.path])
    backend = prodserver.VTasksSupervisor(ARGS={"config": "/etc/vtasks/vtasks.yml", "burst": None})
    backend.start_server(*backend.prep_server_args())
    ((path, argv),) = calls
    assert path == sys.executable
    assert argv[:3] == [sys.executable, "-m", "vtasks.cli.main"]
    # what the vtasks command line makes of the rest
    args = _parser().parse_args(argv[3:])
    assert args.command == "supervise"
    assert (args.config, args.burst) == ("/etc/vtasks/vtasks.yml", True)
    assert (args.settings, args.pythonpath) == ("tests.settings", "/srv/app")


def test_it_is_a_worker_backend_for_the_worker_command() -> None:
    from django_prodserver.backends.base import BaseWorkerBackend

    assert issubclass(prodserver.VTasksSupervisor, BaseWorkerBackend)


@pytest.mark.timeout(60)
def test_manage_py_worker_runs_the_queue(tmp_path: Path) -> None:
    config = tmp_path / "vtasks.yml"
    config.write_text(
        textwrap.dedent(f"""\
            backend: default
            shutdown_timeout: 2
            workers:
              - name: w
                queues: [{QUEUE}]
                concurrency: 2
            """)
    )
    out = tmp_path / "done"
    tasks.record.using(backend="default", queue_name=QUEUE).enqueue(str(out), "ran")
    env = {**os.environ, "VTASKS_TEST_PRODSERVER_CONFIG": str(config)}
    command = [sys.executable, "-m", "django", "worker", "tasks", "--pythonpath", str(ROOT),
               "--settings", "tests.deploy.prodserver_settings"]  # fmt: skip
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=50)
    assert run.returncode == 0, run.stderr
    assert "Starting worker named tasks" in run.stdout
    assert lines(out) == ["ran"]
