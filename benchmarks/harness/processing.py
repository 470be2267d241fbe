"""Process rate: one worker against a full queue, timed from its spawn to the last completion."""

from __future__ import annotations

import time
from collections.abc import Sequence

from benchtasks.completions import CompletionReader

from harness.context import Context
from harness.model import Check, ProcessRun, SleepRun
from harness.procs import StepError, Worker

# After the last expected completion: time for late duplicates and the worker's final acks.
SETTLE_SECONDS = 1.0


def keys_for(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def check_keys(reader: CompletionReader, expected: Sequence[str]) -> Check:
    wanted = set(expected)
    seen = wanted & reader.first_seen.keys()
    return Check(
        expected=len(wanted), completed=len(seen), lost=len(wanted - seen),
        duplicated=len(reader.duplicates()), unexpected=len(reader.first_seen.keys() - wanted),
    )  # fmt: skip


def process_run(ctx: Context, concurrency: int, n: int, prefix: str) -> ProcessRun:
    """Start one worker on a queue of ``n`` no-op tasks; time spawn -> the n-th completion."""
    return _timed_run(ctx, ProcessRun(concurrency=concurrency, n=n), prefix, sleeping=False)


def sleep_run(ctx: Context, concurrency: int, n: int, prefix: str) -> SleepRun:
    """The same with a queue of tasks that sleep 50 ms, under the system's ``sleep_worker``."""
    run = _timed_run(ctx, SleepRun(concurrency=concurrency, n=n), prefix, sleeping=True)
    assert isinstance(run, SleepRun)
    return run


def _timed_run(ctx: Context, run: ProcessRun, prefix: str, *, sleeping: bool) -> ProcessRun:
    keys = keys_for(prefix, run.n)
    wanted = set(keys)
    out_dir = ctx.out_dir(f"{prefix}-out")
    reader = CompletionReader(out_dir)
    worker = ctx.worker(run.concurrency, out_dir, f"worker-{prefix}.log", sleeping=sleeping)
    try:
        run.timed_out = not _wait_all(worker, reader, wanted, ctx.scale.process_timeout)
        times = [reader.first_seen[k] for k in wanted if k in reader.first_seen]
        if times:
            run.seconds = max(times) - worker.started
            run.startup_seconds = min(times) - worker.started
        settle(worker, reader)
    finally:
        run.exit_code = worker.stop()
    reader.poll()
    run.check = check_keys(reader, keys)
    run.check.unfinished_in_db = ctx.client("counts")["unfinished"]
    run.peak_process_mb, run.peak_tree_mb = worker.memory.largest_process_mb, worker.memory.tree_mb
    run.processes = worker.memory.processes
    return run


def _wait_all(worker: Worker, reader: CompletionReader, wanted: set[str], timeout: float) -> bool:
    done = 0
    while True:
        done += sum(1 for key in reader.poll() if key in wanted)
        worker.sample()
        if done >= len(wanted):
            return True
        code = worker.exited()
        if code is not None:
            raise StepError(f"the worker exited with {code} after {done} task(s):\n{worker.tail()}")
        if time.monotonic() - worker.started > timeout:
            return False
        time.sleep(0.01)


def settle(worker: Worker, reader: CompletionReader) -> None:
    until = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < until:
        reader.poll()
        worker.sample()
        time.sleep(0.05)
