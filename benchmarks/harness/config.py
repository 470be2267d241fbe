"""How big each phase is, where the harness writes, and how PostgreSQL and Valkey are reached."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = BENCH_DIR.parent
WORK_DIR = BENCH_DIR / ".work"
RESULTS_MD = BENCH_DIR / "RESULTS.md"
RESULTS_JSON = WORK_DIR / "results.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class Scale:
    """The size of every phase (``FULL`` by default, ``QUICK`` with ``--quick``)."""

    sync_n: int
    async_n: int
    process_n: int  # Enqueued in bulk (the bulk-rate figure), then processed by one worker.
    tune_n: int  # Per concurrency candidate, to pick each system's best.
    bulk_chunk: int
    latency_samples: int
    latency_gap: float
    latency_budget: float  # Seconds of sampling at most (slow-polling systems get fewer samples).
    process_timeout: float  # Seconds a worker gets to finish process_n tasks.
    pgbench_seconds: int
    redis_benchmark_n: int  # Requests per redis-benchmark test (the Valkey family's limit).
    # Tasks that sleep 50 ms, per worker concurrency (Valkey family): {concurrency: tasks}.
    sleep_runs: dict[int, int]


FULL = Scale(
    sync_n=3000, async_n=2000, process_n=10_000, tune_n=2000, bulk_chunk=1000,
    latency_samples=200, latency_gap=0.02, latency_budget=60.0, process_timeout=240.0,
    pgbench_seconds=5, redis_benchmark_n=50_000, sleep_runs={100: 2000, 1000: 10_000},
)  # fmt: skip
QUICK = Scale(
    sync_n=600, async_n=400, process_n=2000, tune_n=600, bulk_chunk=1000,
    latency_samples=50, latency_gap=0.02, latency_budget=20.0, process_timeout=120.0,
    pgbench_seconds=3, redis_benchmark_n=20_000, sleep_runs={100: 1000, 1000: 5000},
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class PgServer:
    host: str
    port: int
    user: str
    password: str

    @classmethod
    def from_env(cls) -> PgServer:
        return cls(
            host=os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
            port=int(os.environ.get("BENCH_PG_PORT", "5432")),
            user=os.environ.get("BENCH_PG_USER", "postgres"),
            password=os.environ.get("BENCH_PG_PASSWORD", ""),
        )

    def env(self) -> dict[str, str]:
        """What ``systems/base.py`` reads."""
        return {
            "BENCH_PG_HOST": self.host, "BENCH_PG_PORT": str(self.port),
            "BENCH_PG_USER": self.user, "BENCH_PG_PASSWORD": self.password,
        }  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class ValkeyServer:
    """The Valkey family's broker: one database number, flushed before every system."""

    host: str
    port: int
    db: int

    @classmethod
    def from_env(cls) -> ValkeyServer:
        return cls(
            host=os.environ.get("BENCH_VALKEY_HOST", "127.0.0.1"),
            port=int(os.environ.get("BENCH_VALKEY_PORT", "6379")),
            db=int(os.environ.get("BENCH_VALKEY_DB", "15")),
        )

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/{self.db}"

    def env(self) -> dict[str, str]:
        """What ``systems/base.py`` and the Celery app read."""
        return {"BENCH_VALKEY_URL": self.url}
