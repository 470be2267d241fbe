"""The pickup floor (``floor.py``): a bare LPUSH -> BLPOP -> thread, timed like a system's pickup."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field

from harness.catalog import PYTHON
from harness.config import BENCH_DIR, WORK_DIR, Scale, ValkeyServer
from harness.model import Latency
from harness.procs import StepError, Worker, run_json

IDLE_SECONDS = 1.5  # As the systems' latency phase: the consumer settles into its wait.


@dataclass(slots=True, kw_only=True)
class FloorLine:
    command: str  # How to run it by hand, for RESULTS.md.
    latencies: list[Latency] = field(default_factory=list)  # One per measurement of the run.
    error: str | None = None


def command(scale: Scale) -> list[str]:
    """The client's command line (the consumer is ``floor.py worker``)."""
    return [
        "floor.py", "client", "--samples", str(scale.latency_samples), "--gap",
        str(scale.latency_gap), "--budget", str(scale.latency_budget), "--idle", str(IDLE_SECONDS),
    ]  # fmt: skip


def measure_floor(server: ValkeyServer, scale: Scale, line: FloorLine, label: str) -> None:
    """Run the consumer and the client once; the samples go to ``line`` (an error, if any)."""
    out_dir = WORK_DIR / f"floor-{label}"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    env = {**os.environ, **server.env(), "BENCH_OUT_DIR": str(out_dir), "PYTHONPATH": str(BENCH_DIR)}
    consumer = Worker(
        [PYTHON, str(BENCH_DIR / "floor.py"), "worker"], env=env, log=WORK_DIR / "floor-worker.log"
    )
    try:
        script, *options = command(scale)
        argv = [PYTHON, str(BENCH_DIR / script), *options, "--out-dir", str(out_dir)]
        out = run_json(argv, env=env, timeout=scale.latency_budget + 90, log=WORK_DIR / "floor.log")
    except StepError as exc:
        line.error = str(exc)[-300:]
        return
    finally:
        consumer.stop(grace=5.0)
    if out.get("error") or not out["samples_ms"]:  # no sample: no percentile to report
        line.error = str(out.get("error") or f"every key was missed: {out['missed'][:3]}...")
        return
    line.latencies.append(
        Latency(samples_ms=out["samples_ms"], missed=len(out["missed"]), concurrency=1)
    )
