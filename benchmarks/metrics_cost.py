"""What the worker's metrics cost per task: a 20k no-op burst with and without them, on Valkey.

    VTASKS_TEST_VALKEY_URL=redis://127.0.0.1:6379/0 .venv/bin/python benchmarks/metrics_cost.py \
        [--count 20000] [--rounds 3] [--multiprocess]

``--multiprocess`` records as a supervised worker does (prometheus-client's mmap files). Rounds
alternate off/on so drift on a busy machine hits both alike. Also times ``WorkerMetrics.finished``
alone on synthetic batches: the per-outcome cost without the noise of a whole run.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--multiprocess", action="store_true")
    args = parser.parse_args()
    if args.multiprocess:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="vtasks-bench-")
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    os.environ.setdefault("VTASKS_TEST_DATABASES", "default")
    os.environ.setdefault("VTASKS_TEST_VALKEY_URL", "redis://127.0.0.1:6379/0")
    os.environ["VTASKS_TEST_VALKEY_PREFIX"] = f"vt-bench-{secrets.token_hex(3)}"
    import django

    django.setup()
    print(f"observer alone: {observer_cost():.2f} us per outcome (batches of 100)")
    off, on = [], []
    for _ in range(args.rounds):
        off.append(burst(args.count, args.concurrency, metrics=False))
        on.append(burst(args.count, args.concurrency, metrics=True))
    best_off, best_on = min(off), min(on)
    print(f"off: {[f'{s:.3f}' for s in off]} s; best {args.count / best_off:,.0f} tasks/s")
    print(f"on:  {[f'{s:.3f}' for s in on]} s; best {args.count / best_on:,.0f} tasks/s")
    print(f"cost: {(best_on - best_off) / args.count * 1e6:+.2f} us per task (best vs best)")


def burst(count: int, concurrency: int, *, metrics: bool) -> float:
    from django.tasks import task_backends

    from vtasks.benchmarking import noop
    from vtasks.observability.metrics import WorkerMetrics
    from vtasks.runtime.identity import process_id
    from vtasks.serve import build_driver, serve_driver, worker_settings

    queue = f"bench-{secrets.token_hex(3)}"
    bound = noop.using(queue_name=queue, backend="valkey")
    backend = task_backends["valkey"]
    for start in range(0, count, 1000):
        backend.enqueue_many([(bound, ("",), {})] * min(1000, count - start))
    observer = WorkerMetrics() if metrics else None
    started = time.perf_counter()
    serve_driver(
        build_driver("valkey"), worker_settings([queue], concurrency, burst=True),
        process_id("bench"), observer=observer,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    backend.clear_queue(queue, failed=True)
    return elapsed


def observer_cost(batches: int = 2000, size: int = 100) -> float:
    from vtasks.drivers.base import Claim, Outcome
    from vtasks.observability.metrics import WorkerMetrics

    observer = WorkerMetrics()
    now = datetime.now(UTC)
    outcomes = []
    for i in range(size):
        claim = Claim(
            id=str(i), task_path="vtasks.benchmarking.noop", queue_name="q", priority=0, args=[],
            kwargs={}, backend="valkey", run_after=None, enqueued_at=now, started_at=now,
            last_attempted_at=now + timedelta(microseconds=i), attempt=1, max_attempts=1,
            worker_ids=[], errors=[],
        )  # fmt: skip
        outcomes.append(Outcome(claim=claim, status="SUCCESSFUL", finished_at=now))
    started = time.perf_counter()
    for _ in range(batches):
        observer.finished(outcomes)
        observer.running([])
    return (time.perf_counter() - started) / (batches * size) * 1e6


if __name__ == "__main__":
    main()
