"""A worker-only process (``VTASKS_IS_WORKER=true`` with ``vtasks.worker_setup``) loads fewer apps,
never imports the site's URLconf, and still runs tasks: ``manage.py runworker`` as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from django.tasks import TaskResultStatus

from tests import tasks
from tests.conftest import storage_for
from tests.helpers import ROOT

pytestmark = pytest.mark.timeout(120)

PROBE = """
import json, sys, django
from django.core.management import call_command
django.setup()
call_command("check", verbosity=0)  # what runworker does first: it imports ROOT_URLCONF
from django.conf import settings
print(json.dumps({"apps": settings.INSTALLED_APPS, "urlconf": settings.ROOT_URLCONF,
                  "site_urls": "tests.urls" in sys.modules,
                  "admin": "django.contrib.admin.sites" in sys.modules}))
"""


@pytest.fixture
def sqlite() -> Iterator[str]:
    yield from storage_for("default")


def _env(worker: bool) -> dict[str, str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.worker_settings"}
    env["VTASKS_IS_WORKER"] = "true" if worker else "false"
    return env


def _probe(worker: bool) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=_env(worker), capture_output=True,
        text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def test_a_worker_only_process_loads_less():
    web, worker = _probe(worker=False), _probe(worker=True)
    assert "django.contrib.admin" in web["apps"] and web["site_urls"] and web["admin"]
    assert worker["urlconf"] == "vtasks.urls_empty" and not worker["site_urls"]
    assert "django.contrib.admin" not in worker["apps"] and not worker["admin"]
    assert "django.contrib.messages" not in worker["apps"]
    assert {"vtasks", "tests", "django.contrib.auth"} <= set(worker["apps"])


def test_a_trimmed_worker_runs_tasks(sqlite):
    results = [
        tasks.add.using(backend=sqlite).enqueue(2, 3),
        tasks.async_add.using(backend=sqlite).enqueue(4, 5),
    ]
    run = subprocess.run(
        [sys.executable, "-m", "django", "runworker", "--backend", sqlite, "--burst",
         "--concurrency", "2"],
        cwd=ROOT, env=_env(worker=True), capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    for result in results:
        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL, result.errors
    assert [r.return_value for r in results] == [5, 9]
