"""Run every phase for one system, one after another; a failing phase is recorded, not fatal."""

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


def run_system(
    system: System,
    scale: Scale,
    server: PgServer,
    broker: ValkeyServer,
    *,
    task_kind: str,
    tune: bool,
) -> SystemResult:
    result = SystemResult(
        name=system.name, version=installed_version(system.package), settings=system.settings
    )
    if result.version is None:
        result.errors["install"] = install_error(system)
        return result
    work = WORK_DIR / system.project
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ctx = Context(system=system, scale=scale, server=server, broker=broker, task_kind=task_kind,
                  tune=tune, db=f"vtasks_bench_{system.project}", work=work)  # fmt: skip
    try:
        _step(result, "setup", lambda: _setup(ctx, result))
        if "setup" not in result.errors:
            for name, step in _steps(system):
                print(f"  {system.name}: {name}", flush=True)
                _step(result, name, lambda step=step: step(ctx, result))  # type: ignore[misc]
    finally:
        _teardown(ctx)
    return result


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
    result.sync = _enqueue(ctx, "sync", ctx.scale.sync_n, "s")
    _stored_check(ctx, result, "sync", ctx.scale.sync_n)


def step_async(ctx: Context, result: SystemResult) -> None:
    ctx.reset()
    result.async_ = _enqueue(ctx, "async", ctx.scale.async_n, "a")
    if result.async_ is not None:
        _stored_check(ctx, result, "async", ctx.scale.async_n)


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
    rated = [
        run for run in tuning if run.rate is not None and run.check is not None and run.check.ok
    ]
    return (
        max(rated, key=lambda run: run.rate or 0.0).concurrency if rated else system.candidates[0]
    )


def step_process(ctx: Context, result: SystemResult) -> None:
    n = ctx.scale.process_n
    result.bulk = _fill_queue(ctx, result, n, "p")
    result.process = process_run(ctx, best_concurrency(ctx.system, result.tuning), n, "p")
    if result.process.timed_out:
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
