"""The systems under test: package, project, worker command, and the concurrency values to try."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.config import BENCH_DIR

PYTHON = sys.executable
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True, slots=True, kw_only=True)
class System:
    name: str  # As shown in the results.
    package: str  # Distribution name, for its version and install check.
    project: str  # The package under benchmarks/systems/.
    candidates: tuple[int, ...]  # Worker concurrency values tried; the best is kept.
    worker: Callable[[int], list[str]]  # concurrency -> argv
    settings: str  # The settings given, in words, for RESULTS.md.

    @property
    def settings_module(self) -> str:
        return f"systems.{self.project}.settings"

    @property
    def is_peer(self) -> bool:
        return self.name != "vtasks"


def _manage(*args: str) -> list[str]:
    return [PYTHON, "-m", "django", *args]


def _vtasks_worker(concurrency: int) -> list[str]:
    return [
        str(VENV_BIN / "vtasks"), "--settings", "systems.vtasks.settings", "--pythonpath", str(BENCH_DIR),
        "worker", "--concurrency", str(concurrency), "--queue", "default",
    ]  # fmt: skip


SYSTEMS: tuple[System, ...] = (
    System(
        name="vtasks",
        package="vtasks",
        project="vtasks",
        candidates=(10, 50, 100),
        worker=_vtasks_worker,
        settings="`DatabaseBackend`, `OPTIONS` empty (driver chosen by vtasks); "
        "`vtasks worker --concurrency N --queue default`",
    ),
    System(
        name="django-vtasks",
        package="django-vtasks",
        project="django_vtasks",
        candidates=(20, 100),
        worker=lambda n: _manage("runworker", "--concurrency", str(n), "--queue", "default"),
        settings="`DatabaseTaskBackend`, `VTASKS_QUEUES=['default']`; `manage.py runworker --concurrency N`",
    ),
    System(
        name="django-tasks-db",
        package="django-tasks-db",
        project="django_tasks_db",
        candidates=(1,),
        worker=lambda n: _manage(
            "db_worker",
            "--queue-name",
            "default",
            "--interval",
            "0.01",
            "--no-startup-delay",
            "--no-reload",
            "--worker-id",
            "bench",
            "--verbosity",
            "0",
        ),  # fmt: skip
        settings="`django_tasks_db.DatabaseBackend`; `manage.py db_worker --interval 0.01 "
        "--no-startup-delay --no-reload -v 0` (one task at a time: no concurrency option)",
    ),
    System(
        name="dj_queue",
        package="dj-queue",
        project="dj_queue",
        candidates=(3, 10, 20, 40),
        worker=lambda n: _manage("dj_queue", "--only-work", "--skip-recurring"),
        settings="`DjQueueBackend`, fork mode, one worker process with N threads, `polling_interval=0.1`, "
        "`prefetch_multiplier=2`, `listen_notify=True`; `manage.py dj_queue --only-work`",
    ),
)
