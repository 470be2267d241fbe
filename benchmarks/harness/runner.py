"""Run the phases phase by phase, every system in turn; a failing phase is recorded, not fatal.

This machine's speed drifts by tens of percent within minutes (a one-client redis-benchmark gave
10,200 and 17,500 round trips/s an hour apart). Run system by system, whichever system ran during
a slow spell lost; so each phase runs for every system before the next phase starts, and the
short phases (enqueue one by one, sync and async; bulk enqueue + process) run ``ROUNDS`` times,
the systems' order reversed each round, keeping each system's median round.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from importlib import metadata

from harness import pg, valkey
from harness.catalog import PYTHON, System
from harness.config import WORK_DIR, PgServer, Scale, ValkeyServer
from harness.context import Context
from harness.latency import measure_latency
from harness.model import ProcessRun, Rate, StoredCheck, SystemResult
from harness.processing import process_run, sleep_run
from harness.procs import StepError, run_plain


def installed_version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def install_error(system: System) -> str:
    log = WORK_DIR / f"pip-{system.package}.log"
    detail = log.read_text(errors="replace")[-800:] if log.exists() else "(no pip log)"
    return f"{system.package} is not installed in the benchmark venv: {detail}"


#: Rounds of the phases that take seconds, not minutes; the median round is kept.
ROUNDS = 5
REPEATED = ("sync enqueue", "async enqueue", "bulk enqueue + process")


def run_systems(
    systems: Sequence[System],
    scale: Scale,
    server: PgServer,
    broker: ValkeyServer,
    *,
    task_kind: str,
    tune: bool,
) -> list[SystemResult]:
    """Every phase for every system, phase by phase (see the module docstring)."""
    results: list[SystemResult] = []
    ready: list[tuple[Context, SystemResult]] = []
    try:
        for system in systems:
            result = SystemResult(
                name=system.name, version=installed_version(system.package),
                settings=system.settings,
            )  # fmt: skip
            results.append(result)
            if result.version is None:
                result.errors["install"] = install_error(system)
                continue
            work = WORK_DIR / system.project
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            ctx = Context(system=system, scale=scale, server=server, broker=broker,
                          task_kind=task_kind, tune=tune, db=f"vtasks_bench_{system.project}",
                          work=work)  # fmt: skip
            ready.append((ctx, result))
            _step(result, "setup", lambda ctx=ctx, result=result: _setup(ctx, result))  # type: ignore[misc]
        for name, step in _all_steps([ctx.system for ctx, _ in ready]):
            rounds = ROUNDS if name in REPEATED else 1
            for round_ in range(rounds):
                order = ready if round_ % 2 == 0 else ready[::-1]
                for ctx, result in order:
                    if "setup" in result.errors or name in result.errors:
                        continue
                    if name not in dict(_steps(ctx.system)):
                        continue
                    label = f" (round {round_ + 1} of {rounds})" if rounds > 1 else ""
                    print(f"  {result.name}: {name}{label}", flush=True)
                    _step(result, name, lambda step=step, ctx=ctx, result=result: step(ctx, result))  # type: ignore[misc]
        for _, result in ready:
            keep_medians(result)
    finally:
        for ctx, _ in ready:
            _teardown(ctx)
    return results


def _all_steps(systems: Sequence[System]) -> list[tuple[str, Step]]:
    """The phases any of ``systems`` runs, in order."""
    steps: dict[str, Step] = {}
    for system in systems:
        steps.update(_steps(system))
    return list(steps.items())


def keep_medians(result: SystemResult) -> None:
    """Of the repeated phases' rounds, keep each system's median round (by its rate)."""
    if result.sync_rounds:
        result.sync = _median(result.sync_rounds, lambda r: r.rate)
    if result.async_rounds:
        result.async_ = _median(result.async_rounds, lambda r: r.rate)
    if result.bulk_rounds:
        result.bulk = _median(result.bulk_rounds, lambda r: r.rate)
    if result.process_rounds:
        result.process = _median(result.process_rounds, lambda r: r.rate or 0.0)


def _median[T](items: Sequence[T], key: Callable[[T], float]) -> T:
    """The middle item by ``key`` (of an even count, the lower middle)."""
    ordered = sorted(items, key=key)
    return ordered[(len(ordered) - 1) // 2]


def _step(result: SystemResult, name: str, action: Callable[[], None]) -> None:
    try:
        action()
    except Exception as exc:
        result.errors[name] = f"{type(exc).__name__}: {exc}"
        print(f"  {result.name}: {name} FAILED: {result.errors[name][:300]}", flush=True)


def _setup(ctx: Context, result: SystemResult) -> None:
    if ctx.on_valkey:
        valkey.flush(ctx.broker)
    else:
        pg.recreate_database(ctx.server, ctx.db)
        argv = [PYTHON, "-m", "django", "migrate", "--noinput", "-v", "0"]
        run_plain(argv, env=ctx.env(), timeout=300, log=ctx.work / "migrate.log")
        ctx.keep_tables = pg.populated_tables(ctx.server, ctx.db)
    result.info = ctx.client("info")
    result.bulk_api = result.info.get("bulk_api")


def _teardown(ctx: Context) -> None:
    if ctx.on_valkey:
        valkey.flush(ctx.broker)
    else:
        pg.drop_database(ctx.server, ctx.db)


# -- enqueue ---------------------------------------------------------------------------------------
def _enqueue(
    ctx: Context, mode: str, n: int, prefix: str, *, kind: str | None = None
) -> Rate | None:
    """Enqueue ``n`` tasks keyed ``prefix0..``; ``None`` when the system lacks that API."""
    args = ["enqueue", "--mode", mode, "--n", str(n), "--prefix", prefix,
            "--chunk", str(ctx.scale.bulk_chunk)]  # fmt: skip
    out = ctx.client(*args, task_kind=kind) if kind else ctx.client(*args)
    if out.get("unsupported"):
        return None
    return Rate(n=out["n"], seconds=out["seconds"], rate=out["rate"])


def _stored_check(ctx: Context, result: SystemResult, label: str, expected: int) -> None:
    stored = ctx.client("counts")["stored"]
    result.stored_checks[label] = StoredCheck(expected=expected, stored=stored)
    if stored != expected:
        raise StepError(f"{label}: {expected} enqueued but {stored} rows stored")


def step_sync(ctx: Context, result: SystemResult) -> None:
    ctx.reset()
    rate = _enqueue(ctx, "sync", ctx.scale.sync_n, "s")
    _stored_check(ctx, result, "sync", ctx.scale.sync_n)
    if rate is not None:
        result.sync_rounds.append(rate)


def step_async(ctx: Context, result: SystemResult) -> None:
    ctx.reset()
    rate = _enqueue(ctx, "async", ctx.scale.async_n, "a")
    if rate is not None:
        _stored_check(ctx, result, "async", ctx.scale.async_n)
        result.async_rounds.append(rate)


def _fill_queue(
    ctx: Context, result: SystemResult, n: int, prefix: str, *, kind: str | None = None
) -> Rate | None:
    """Enqueue ``n`` tasks in bulk when the system can, else one by one; the bulk rate or ``None``."""
    ctx.reset()
    rate = _enqueue(ctx, "bulk", n, prefix, kind=kind) if result.bulk_api else None
    if rate is None:
        _enqueue(ctx, "sync", n, prefix, kind=kind)
    _stored_check(ctx, result, f"queue of {n} ({prefix})", n)
    return rate


# -- processing ------------------------------------------------------------------------------------
def step_tune(ctx: Context, result: SystemResult) -> None:
    candidates = ctx.system.candidates if ctx.tune else ctx.system.candidates[:1]
    if len(candidates) < 2:
        return
    for concurrency in candidates:
        _fill_queue(ctx, result, ctx.scale.tune_n, f"t{concurrency}-")
        result.tuning.append(process_run(ctx, concurrency, ctx.scale.tune_n, f"t{concurrency}-"))


def best_concurrency(system: System, tuning: Sequence[ProcessRun]) -> int:
    """The candidate with the best steady rate (first task -> last). A tuning queue is small, so
    its total rate is mostly the worker's start-up, which the concurrency does not change: that
    one's noise picked a concurrency a tenth as deep as the best one for vtasks."""
    rated = [
        run for run in tuning if run.rate is not None and run.check is not None and run.check.ok
    ]
    return (
        max(rated, key=lambda run: run.steady_rate or run.rate or 0.0).concurrency
        if rated else system.candidates[0]
    )  # fmt: skip


def step_process(ctx: Context, result: SystemResult) -> None:
    n = ctx.scale.process_n
    bulk = _fill_queue(ctx, result, n, "p")
    if bulk is not None:
        result.bulk_rounds.append(bulk)
    run = process_run(ctx, best_concurrency(ctx.system, result.tuning), n, "p")
    result.process_rounds.append(run)
    if run.timed_out:
        raise StepError(f"not all {n} tasks ran within {ctx.scale.process_timeout:g}s")


# -- pickup latency --------------------------------------------------------------------------------
def step_latency(ctx: Context, result: SystemResult) -> None:
    ctx.reset()
    result.latency = measure_latency(ctx, best_concurrency(ctx.system, result.tuning))


# -- 50 ms sleeping tasks -------------------------------------------------------------------------
def step_sleep(ctx: Context, result: SystemResult) -> None:
    """Per concurrency of ``scale.sleep_runs`` (vtasks: all; peers: the first only)."""
    runs = ctx.scale.sleep_runs.items()
    for concurrency, n in runs if not ctx.system.is_peer else list(runs)[:1]:
        prefix = f"z{concurrency}-"
        _fill_queue(ctx, result, n, prefix, kind="sleep")
        run = sleep_run(ctx, concurrency, n, prefix)
        result.sleep.append(run)
        if run.timed_out:
            raise StepError(f"not all {n} sleeping tasks ran within {ctx.scale.process_timeout:g}s")


Step = Callable[[Context, SystemResult], None]
_STEPS: tuple[tuple[str, Step], ...] = (
    ("sync enqueue", step_sync),
    ("async enqueue", step_async),
    ("tune concurrency", step_tune),
    ("bulk enqueue + process", step_process),
    ("pickup latency", step_latency),
)


def _steps(system: System) -> tuple[tuple[str, Step], ...]:
    if system.sleep_worker is None:
        return _STEPS
    return (*_STEPS, ("50 ms sleeping tasks", step_sleep))
