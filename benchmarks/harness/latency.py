"""Pickup latency: an idle worker, one task at a time; latency = task body start - just before enqueue.

The client (inside the system's Django) enqueues and times; this side runs the worker, samples its
memory, bounds the client's time, and checks afterwards that every sampled task ran exactly once.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

from benchtasks.completions import CompletionReader

from harness.catalog import PYTHON
from harness.config import BENCH_DIR
from harness.context import Context
from harness.model import Latency
from harness.processing import check_keys, settle
from harness.procs import StepError, Worker

READY_TIMEOUT = 60.0  # The worker's start-up: until it runs the probe task.
IDLE_SECONDS = 1.5  # After the probe, so that a polling worker settles into its idle rhythm.
SAMPLE_TIMEOUT = 5.0


def _client_argv(ctx: Context, out_dir: str) -> list[str]:
    scale = ctx.scale
    return [
        PYTHON, str(BENCH_DIR / "client.py"), "--system", ctx.system.project, "--task-kind", ctx.task_kind,
        "latency", "--out-dir", out_dir, "--samples", str(scale.latency_samples),
        "--gap", str(scale.latency_gap), "--budget", str(scale.latency_budget), "--idle", str(IDLE_SECONDS),
        "--ready-timeout", str(READY_TIMEOUT), "--sample-timeout", str(SAMPLE_TIMEOUT),
    ]  # fmt: skip


def measure_latency(ctx: Context, concurrency: int) -> Latency:
    out_dir = ctx.out_dir("latency-out")
    worker = ctx.worker(concurrency, out_dir, "worker-latency.log")
    try:
        out = _run_client(ctx, worker, _client_argv(ctx, str(out_dir)))
        reader = CompletionReader(out_dir)
        settle(worker, reader)
    finally:
        worker.stop()
    if out.get("error"):
        raise StepError(f"{out['error']}\n{worker.tail()}")
    reader.poll()
    latency = Latency(
        samples_ms=out["samples_ms"], missed=len(out["missed"]), concurrency=concurrency
    )
    latency.check = check_keys(reader, out["keys"])
    latency.check.unfinished_in_db = ctx.client("counts")["unfinished"]
    latency.peak_process_mb = worker.memory.largest_process_mb
    return latency


def _run_client(ctx: Context, worker: Worker, argv: list[str]) -> dict[str, Any]:
    """Run the latency client while sampling the worker; both are bounded in time."""
    limit = READY_TIMEOUT + IDLE_SECONDS + ctx.scale.latency_budget + SAMPLE_TIMEOUT + 60
    stdout_path = ctx.work / "latency-client.out"
    with stdout_path.open("w") as out, (ctx.work / "client.log").open("a") as err:
        client = subprocess.Popen(
            argv, env=ctx.env(), stdout=out, stderr=err, start_new_session=True
        )
        started = time.monotonic()
        while client.poll() is None:
            worker.sample()
            if worker.exited() is not None or time.monotonic() - started > limit:
                client.kill()
                client.wait(timeout=10)
                raise StepError(
                    f"latency client stopped (worker exit {worker.exited()}):\n{worker.tail()}"
                )
            time.sleep(0.1)
    lines = stdout_path.read_text().strip().splitlines()
    if client.returncode != 0 or not lines:
        raise StepError(f"latency client exit {client.returncode}; see {ctx.work / 'client.log'}")
    return json.loads(lines[-1])
