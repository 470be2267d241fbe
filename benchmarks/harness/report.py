"""RESULTS.md: one table per metric, each figure beside its ratio to the best peer, and the context."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.model import SystemResult
from harness.pg import PgbenchResult
from harness.targets import (
    Getter,
    Target,
    async_rate,
    best_peer,
    bulk_rate,
    p50,
    p99,
    process_rate,
    sync_rate,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunInfo:
    command: str
    date: str
    scale: str
    task_kind: str
    seconds: float
    machine: dict[str, str]
    versions: dict[str, str]
    postgres: dict[str, str]
    pgbench_version: str
    vtasks_revision: str


def _num(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _ratio(value: float | None, best: tuple[str, float] | None, *, higher: bool = True) -> str:
    if value is None or best is None or best[1] == 0:
        return "—"
    return f"{value / best[1]:.2f}×" if higher else f"{value / best[1]:.2f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def _rate_section(title: str, results: Sequence[SystemResult], get: Getter, note: str) -> list[str]:
    best = best_peer(results, get)
    rows = [[r.name, _num(get(r)), _ratio(get(r), best), _missing(r, get)] for r in results]
    return [f"## {title}", "", note, ""] + _table(
        ["system", "tasks/s", "× fastest peer", "note"], rows
    )


def _missing(result: SystemResult, get: Getter) -> str:
    if get(result) is not None:
        return ""
    if "install" in result.errors:
        return "not installed (see Problems)"
    if get is bulk_rate and result.bulk_api is None and result.info:
        return "n/a: no bulk enqueue API"
    failed = [name for name in result.errors]
    return f"failed: {', '.join(failed)} (see Problems)" if failed else "not measured"


def _process_section(results: Sequence[SystemResult]) -> list[str]:
    best = best_peer(results, process_rate)
    rows = []
    for r in results:
        p = r.process
        rows.append([
            r.name, str(p.concurrency) if p else "—", _num(process_rate(r)), _ratio(process_rate(r), best),
            _num(p.steady_rate if p else None), _num(p.startup_seconds if p else None, 2),
            p.check.text() if p and p.check else _missing(r, process_rate),
        ])  # fmt: skip
    header = [
        "system",
        "concurrency",
        "tasks/s",
        "× fastest peer",
        "steady tasks/s",
        "startup s",
        "check",
    ]
    return _table(header, rows)


def _tuning_section(results: Sequence[SystemResult]) -> list[str]:
    rows = [
        [r.name, str(t.concurrency), _num(t.rate), t.check.text() if t.check else "—"]
        for r in results for t in r.tuning
    ]  # fmt: skip
    if not rows:
        return []
    return [
        "Concurrency tried (smaller queue; the best was kept for the rows above and for latency):",
        "",
    ] + _table(["system", "concurrency", "tasks/s", "check"], rows)


def _latency_section(results: Sequence[SystemResult]) -> list[str]:
    best = best_peer(results, p99, higher=False)
    rows = []
    for r in results:
        lat = r.latency
        rows.append([
            r.name, str(len(lat.samples_ms)) if lat else "—", _num(p50(r), 1), _num(p99(r), 1),
            _num(max(lat.samples_ms) if lat and lat.samples_ms else None, 1), _ratio(p99(r), best, higher=False),
            (lat.check.text() + (f", {lat.missed} over 5 s" if lat.missed else "")) if lat and lat.check
            else _missing(r, p99),
        ])  # fmt: skip
    header = ["system", "samples", "p50 ms", "p99 ms", "max ms", "p99 ÷ best peer p99", "check"]
    return _table(header, rows)


def _memory_section(results: Sequence[SystemResult]) -> list[str]:
    rows = []
    for r in results:
        p = r.process
        rows.append([
            r.name, _num(p.peak_process_mb if p else None, 1), _num(p.peak_tree_mb if p else None, 1),
            str(p.processes) if p else "—",
        ])  # fmt: skip
    return _table(["system", "worker process MB", "whole tree MB", "processes"], rows)


def _context_section(run: RunInfo, results: Sequence[SystemResult]) -> list[str]:
    m, pgf = run.machine, run.postgres
    drivers = [f"`{r.info['driver']}`" for r in results if r.info.get("driver")]
    lines = [
        "## Machine and versions", "",
        f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']} memory, Linux {m['kernel']}",
        f"- PostgreSQL {pgf.get('version')} on the same machine (synchronous_commit={pgf.get('synchronous_commit')}, "
        f"fsync={pgf.get('fsync')}, shared_buffers={pgf.get('shared_buffers')}); {run.pgbench_version}",
        f"- Python {m['python']}; vtasks at commit {run.vtasks_revision}",
        "- Packages: " + ", ".join(f"{name} {version}" for name, version in run.versions.items()),
    ]  # fmt: skip
    if drivers:
        lines.append(
            "- vtasks driver (the backend's `create_driver()`, as the worker calls it): "
            + drivers[0]
        )
    return lines + [""]


def _settings_section(results: Sequence[SystemResult]) -> list[str]:
    lines = ["## Settings per system", "",
             "All: PostgreSQL with `CONN_MAX_AGE=None` (persistent connections), `DEBUG=False`, the "
             "`django.tasks` logger at WARNING (no per-task log lines), each system in its own database.", ""]  # fmt: skip
    for r in results:
        lines.append(f"- **{r.name}** {r.version or '(not installed)'}: {r.settings}")
    return lines + [""]


def _problems_section(results: Sequence[SystemResult]) -> list[str]:
    lines = ["## Problems", ""]
    found = [(r.name, step, text) for r in results for step, text in r.errors.items()]
    bad = [(r.name, label, c) for r in results for label, c in r.stored_checks.items() if not c.ok]
    if not found and not bad:
        return lines + ["None: every phase ran, and every task ran exactly once.", ""]
    for name, step, text in found:
        lines += [f"- **{name}**, {step}:", "", "```", text.strip()[-1500:], "```", ""]
    for name, label, c in bad:
        lines.append(f"- **{name}**, {label}: {c.expected} enqueued, {c.stored} rows stored")
    return lines + [""]


def _pgbench_section(limit: PgbenchResult, results: Sequence[SystemResult]) -> list[str]:
    head = f"One client, autocommit, one small-row INSERT per transaction (`{limit.command}`): "
    if limit.tps is None:
        return ["## Physical limit: pgbench", "", head + f"not measured ({limit.error}).", ""]
    mine = next((sync_rate(r) for r in results if r.name == "vtasks"), None)
    share = f" vtasks' one-by-one sync enqueue is **{mine / limit.tps:.0%}** of it." if mine else ""
    return ["## Physical limit: pgbench", "", head + f"**{limit.tps:,.0f} inserts/s**.{share}", ""]


def render(
    run: RunInfo, results: Sequence[SystemResult], limit: PgbenchResult, targets: Sequence[Target]
) -> str:
    lines = [
        "# Benchmark results", "",
        f"Written by `benchmarks/bench.py` on {run.date}, in {run.seconds / 60:.1f} minutes, by:", "",
        f"    {run.command}", "",
        f"Scale: {run.scale}; task body: {run.task_kind} no-op. See README.md for what each figure means.", "",
        "## Targets (vtasks, on PostgreSQL)", "", "```", *[t.line for t in targets], "```", "",
        *_context_section(run, results),
        *_pgbench_section(limit, results),
        *_rate_section("1. Enqueue one by one, sync (`task.enqueue()` in a loop)", results, sync_rate,
                       "Each call is its own autocommit INSERT."),
        *_rate_section("2. Enqueue one by one, async (`await task.aenqueue()`)", results, async_rate,
                       "One event loop (asyncio), awaiting each call in turn."),
        *_rate_section("3. Bulk enqueue (each system's own bulk API)", results, bulk_rate,
                       "Calls of 1,000 tasks each: " + "; ".join(
                           f"{r.name} `{r.bulk_api}`" for r in results if r.bulk_api) + "."),
        "## 4. Process rate: one worker process, no-op tasks", "",
        "Tasks/s = tasks ÷ (worker spawn → the last task's start); steady = first → last task (no start-up).", "",
        *_process_section(results), *_tuning_section(results),
        "## 5. Pickup latency with an idle worker", "",
        "One task at a time; latency = the task body's start − the moment just before `enqueue()`.", "",
        *_latency_section(results),
        "## 6. Worker peak RSS (during the process-rate run)", "",
        "`VmHWM` from `/proc`: the largest process, and the sum over the worker's process tree.", "",
        *_memory_section(results),
        *_settings_section(results), *_problems_section(results),
    ]  # fmt: skip
    return "\n".join(lines).rstrip() + "\n"
