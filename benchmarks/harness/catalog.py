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
    family: str = "postgres"  # "postgres" or "valkey": the store it runs on, and its targets.
    # For the 50 ms sleeping tasks (Valkey family): concurrency -> argv; None: not measured.
    sleep_worker: Callable[[int], list[str]] | None = None

    @property
    def settings_module(self) -> str:
        return f"systems.{self.project}.settings"

    @property
    def is_peer(self) -> bool:
        return self.name != "vtasks"


def _manage(*args: str) -> list[str]:
    return [PYTHON, "-m", "django", *args]


def _vtasks_worker(project: str) -> Callable[[int], list[str]]:
    def argv(concurrency: int) -> list[str]:
        return [
            str(VENV_BIN / "vtasks"), "--settings", f"systems.{project}.settings", "--pythonpath",
            str(BENCH_DIR), "worker", "--concurrency", str(concurrency), "--queue", "default",
        ]  # fmt: skip

    return argv


def _django_vtasks_worker(concurrency: int) -> list[str]:
    return _manage("runworker", "--concurrency", str(concurrency), "--queue", "default")


def _celery_worker(concurrency: int) -> list[str]:
    """Concurrency 1 is the solo pool (Celery's fastest for no-ops here), more is the threads pool."""
    pool = "solo" if concurrency == 1 else "threads"
    return [
        str(VENV_BIN / "celery"), "-A", "systems.celery.app", "worker", f"--pool={pool}",
        "-c", str(concurrency), "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-O", "fair", "--loglevel", "WARNING",
    ]  # fmt: skip


SYSTEMS: tuple[System, ...] = (
    System(
        name="vtasks",
        package="vtasks",
        project="vtasks",
        candidates=(10, 50, 100),
        worker=_vtasks_worker("vtasks"),
        settings="`DatabaseBackend`, `OPTIONS` empty (driver chosen by vtasks); "
        "`vtasks worker --concurrency N --queue default`",
    ),
    System(
        name="django-vtasks",
        package="django-vtasks",
        project="django_vtasks",
        candidates=(20, 100),
        worker=_django_vtasks_worker,
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
    System(
        name="vtasks",
        package="vtasks",
        project="vtasks_valkey",
        candidates=(10, 50, 100, 500),
        worker=_vtasks_worker("vtasks_valkey"),
        sleep_worker=_vtasks_worker("vtasks_valkey"),
        family="valkey",
        settings="`ValkeyBackend`, `OPTIONS: {BROKER_URL: redis://127.0.0.1:6379/15}` (its defaults "
        "otherwise: `BLOCKING_TIMEOUT` 1.0); `vtasks worker --concurrency N --queue default`",
    ),
    System(
        name="django-vtasks",
        package="django-vtasks",
        project="django_vtasks_valkey",
        candidates=(20, 100, 500),
        worker=_django_vtasks_worker,
        sleep_worker=_django_vtasks_worker,
        family="valkey",
        settings="`ValkeyTaskBackend`, `OPTIONS: {BROKER_URL: redis://127.0.0.1:6379/15}` (django-vcache's "
        "Rust driver), `VTASKS_QUEUES=['default']`, `VTASKS_RUN_SCHEDULER=False`; "
        "`manage.py runworker --concurrency N --queue default`",
    ),
    System(
        name="celery",
        package="celery",
        project="celery",
        candidates=(1, 10),
        worker=_celery_worker,
        sleep_worker=_celery_worker,
        family="valkey",
        settings="Redis broker, `task_ignore_result=True` (no result backend), other settings default "
        "(`worker_prefetch_multiplier=4`); `celery -A systems.celery.app worker --pool=solo -c 1` "
        "(concurrency 1) or `--pool=threads -c N`, always `--without-gossip --without-mingle "
        "--without-heartbeat -O fair --loglevel WARNING`; the sleeping tasks use `--pool=threads -c 100`",
    ),
)

FAMILIES: tuple[str, ...] = ("postgres", "valkey")
