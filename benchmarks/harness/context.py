"""One system's run: its store, its work folder, and how to start its client and its worker."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchtasks.record import OUT_DIR_ENV

from harness import pg, valkey
from harness.catalog import PYTHON, System
from harness.config import BENCH_DIR, PgServer, Scale, ValkeyServer
from harness.procs import Worker, run_json


@dataclass(slots=True, kw_only=True)
class Context:
    system: System
    scale: Scale
    server: PgServer
    broker: ValkeyServer
    task_kind: str
    tune: bool
    db: str
    work: Path
    keep_tables: set[str] = field(default_factory=set)

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ, **self.server.env(), **self.broker.env(), "BENCH_DB_NAME": self.db,
            "PYTHONPATH": str(BENCH_DIR),
            "DJANGO_SETTINGS_MODULE": self.system.settings_module, **extra,
        }  # fmt: skip

    def client(
        self, *args: str, timeout: float = 300.0, task_kind: str | None = None
    ) -> dict[str, Any]:
        argv = [PYTHON, str(BENCH_DIR / "client.py"), "--system", self.system.project,
                "--task-kind", task_kind or self.task_kind, *args]  # fmt: skip
        return run_json(argv, env=self.env(), timeout=timeout, log=self.work / "client.log")

    @property
    def on_valkey(self) -> bool:
        return self.system.family == "valkey"

    def reset(self) -> None:
        """Start a phase from an empty store: FLUSHDB (Valkey) or TRUNCATE (PostgreSQL)."""
        if self.on_valkey:
            valkey.flush(self.broker)
        else:
            pg.empty_tables(self.server, self.db, self.keep_tables)

    def out_dir(self, name: str) -> Path:
        path = self.work / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def worker(
        self, concurrency: int, out_dir: Path, log_name: str, *, sleeping: bool = False
    ) -> Worker:
        env = self.env(**{OUT_DIR_ENV: str(out_dir), "BENCH_CONCURRENCY": str(concurrency)})
        command = self.system.sleep_worker if sleeping else None
        argv = (command or self.system.worker)(concurrency)
        return Worker(argv, env=env, log=self.work / log_name)
