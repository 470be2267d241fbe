"""One system's run: its database, its work folder, and how to start its client and its worker."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchtasks.record import OUT_DIR_ENV

from harness import pg
from harness.catalog import PYTHON, System
from harness.config import BENCH_DIR, PgServer, Scale
from harness.procs import Worker, run_json


@dataclass(slots=True, kw_only=True)
class Context:
    system: System
    scale: Scale
    server: PgServer
    task_kind: str
    tune: bool
    db: str
    work: Path
    keep_tables: set[str] = field(default_factory=set)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ, **self.server.env(), "BENCH_DB_NAME": self.db, "PYTHONPATH": str(BENCH_DIR),
            "DJANGO_SETTINGS_MODULE": self.system.settings_module, **extra,
        }  # fmt: skip

    def client(self, *args: str, timeout: float = 300.0) -> dict[str, Any]:
        argv = [PYTHON, str(BENCH_DIR / "client.py"), "--system", self.system.project,
                "--task-kind", self.task_kind, *args]  # fmt: skip
        return run_json(argv, env=self.env(), timeout=timeout, log=self.work / "client.log")

    def reset(self) -> None:
        pg.empty_tables(self.server, self.db, self.keep_tables)

    def out_dir(self, name: str) -> Path:
        path = self.work / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def worker(self, concurrency: int, out_dir: Path, log_name: str) -> Worker:
        env = self.env(**{OUT_DIR_ENV: str(out_dir), "BENCH_CONCURRENCY": str(concurrency)})
        return Worker(self.system.worker(concurrency), env=env, log=self.work / log_name)
