"""The collector is off during the ``vtasks`` command's start-up and frozen-then-on once it serves."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from vtasks.cli.main import main
from vtasks.core import heap

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def restore_collector() -> Iterator[None]:
    yield
    heap.resume()
    gc.unfreeze()
    gc.enable()


def test_settle_freezes_what_start_up_made_and_turns_the_collector_on():
    heap.pause()
    assert not gc.isenabled()
    heap.settle()
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0


def test_resume_turns_the_collector_on_without_freezing():
    heap.pause()
    heap.resume()
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_a_collector_disabled_on_purpose_stays_disabled():
    gc.disable()
    heap.pause()  # not ours to undo
    heap.settle()
    heap.resume()
    assert not gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_the_command_turns_the_collector_back_on_when_it_fails_early():
    with pytest.raises(SystemExit):
        main(["no-such-command"])
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


PROBE = """
import gc, sys
import vtasks.cli.main
assert not any(m.split(".")[0] == "django" for m in sys.modules), "import vtasks imported Django"
import vtasks
from vtasks.backends.base import VTasksBackend  # imports vtasks.declare (the Task class)
from vtasks import Task, enqueue_on_commit, task
assert callable(task) and not isinstance(task, type(sys)), task
assert vtasks.task is task and vtasks.Task is VTasksBackend.task_class
print("ok")
"""


def test_importing_vtasks_is_free_and_its_names_are_the_declared_ones():
    """The command pauses the collector before Django is imported: ``import vtasks`` (which the
    console script does first) must not import it; ``vtasks.task`` is still the decorator."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.stdout.strip() == "ok", out.stderr
