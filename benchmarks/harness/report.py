"""RESULTS.md: per family, one table per metric, each figure beside its ratio to the best peer.

The file holds one section per family between ``<!-- family:NAME -->`` markers; a run replaces the
sections of the families it ran and keeps the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.floor import FloorLine
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
from harness.valkey import BenchmarkLine


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
    valkey: dict[str, str]


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


#: Where each repeated figure keeps its rounds (the median is the figure itself).
_ROUNDS: dict[Getter, str] = {
    sync_rate: "sync_rounds", async_rate: "async_rounds", bulk_rate: "bulk_rounds",
    process_rate: "process_rounds",
}  # fmt: skip
ROUNDS_NOTE = (
    "Median of the rounds shown; each round ran every system in turn, phase by phase, in an "
    "alternating order."
)


def _rounds(result: SystemResult, get: Getter) -> str:
    """Every round's figure, in the order they ran ("" for a single round)."""
    rounds = getattr(result, _ROUNDS[get], [])
    rates = [r.rate for r in rounds if r.rate is not None]
    return " / ".join(_num(rate) for rate in rates) if len(rates) > 1 else ""


def _rate_section(title: str, results: Sequence[SystemResult], get: Getter, note: str) -> list[str]:
    best = best_peer(results, get)
    rows = [
        [r.name, _num(get(r)), _ratio(get(r), best), _rounds(r, get), _missing(r, get)]
        for r in results
    ]
    return [f"## {title}", "", f"{note} {ROUNDS_NOTE}", ""] + _table(
        ["system", "tasks/s", "× fastest peer", "rounds", "note"], rows
    )


def _missing(result: SystemResult, get: Getter) -> str:
    if get(result) is not None:
        return ""
    if "install" in result.errors:
        return "not installed (see Problems)"
    if get is bulk_rate and result.bulk_api is None and result.info:
        return "n/a: no bulk enqueue API faster than a loop"
    if get is async_rate and result.info and "async enqueue" not in result.errors:
        return "n/a: no async enqueue API"
    failed = [name for name in result.errors]
    return f"failed: {', '.join(failed)} (see Problems)" if failed else "not measured"


def _process_section(results: Sequence[SystemResult]) -> list[str]:
    best = best_peer(results, process_rate)
    rows = []
    for r in results:
        p = r.process
        rows.append([
            r.name, str(p.concurrency) if p else "—", _num(process_rate(r)), _ratio(process_rate(r), best),
            _rounds(r, process_rate), _num(p.steady_rate if p else None),
            _num(p.startup_seconds if p else None, 2),
            p.check.text() if p and p.check else _missing(r, process_rate),
        ])  # fmt: skip
    header = [
        "system",
        "concurrency",
        "tasks/s",
        "× fastest peer",
        "rounds",
        "steady tasks/s",
        "startup s",
        "check",
    ]
    return _table(header, rows)


def _tuning_section(results: Sequence[SystemResult]) -> list[str]:
    rows = [
        [r.name, str(t.concurrency), _num(t.rate), _num(t.steady_rate), t.check.text() if t.check else "—"]
        for r in results for t in r.tuning
    ]  # fmt: skip
    if not rows:
        return []
    return [
        "Concurrency tried (smaller queue; the best steady rate was kept for the rows above and for "
        "latency):",
        "",
    ] + _table(["system", "concurrency", "tasks/s", "steady tasks/s", "check"], rows)


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


def _context_section(run: RunInfo, results: Sequence[SystemResult], store: str) -> list[str]:
    m = run.machine
    drivers = [f"`{r.info['driver']}`" for r in results if r.info.get("driver")]
    lines = [
        "## Machine and versions", "",
        f"- Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory']} memory, Linux {m['kernel']}; "
        f"load average (1 / 5 / 15 min) when the results were written: {m.get('load', '?')}",
        store,
        f"- Python {m['python']}; vtasks at commit {run.vtasks_revision}",
        "- Packages: " + ", ".join(f"{name} {version}" for name, version in run.versions.items()),
    ]  # fmt: skip
    if drivers:
        lines.append(
            "- vtasks driver (the backend's `create_driver()`, as the worker calls it): "
            + drivers[0]
        )
    return lines + [""]


_PG_COMMON = ("All: PostgreSQL with `CONN_MAX_AGE=None` (persistent connections), `DEBUG=False`, the "
              "`django.tasks` logger at WARNING (no per-task log lines), each system in its own database.")  # fmt: skip
_VALKEY_COMMON = ("All: the same Redis, database 15, `FLUSHDB` before every phase and system; Django "
                  "(for the vtasks systems and the clients) with an in-memory SQLite that no task uses, "
                  "`DEBUG=False`, the `django.tasks` logger at WARNING.")  # fmt: skip


def _settings_section(results: Sequence[SystemResult], common: str) -> list[str]:
    lines = ["## Settings per system", "", common, ""]
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


def _head(run: RunInfo, family: str, targets: Sequence[Target]) -> list[str]:
    return [
        f"Written by `benchmarks/bench.py` on {run.date}, in {run.seconds / 60:.1f} minutes (the whole "
        f"run), by:", "", f"    {run.command}", "",
        f"Scale: {run.scale}; task body: {run.task_kind} no-op. See README.md for what each figure means.", "",
        f"## Targets (vtasks, on {family})", "", "```", *[t.line for t in targets], "```", "",
    ]  # fmt: skip


def _pg_store(run: RunInfo) -> str:
    pgf = run.postgres
    return (f"- PostgreSQL {pgf.get('version')} on the same machine (synchronous_commit={pgf.get('synchronous_commit')}, "
            f"fsync={pgf.get('fsync')}, shared_buffers={pgf.get('shared_buffers')}); {run.pgbench_version}")  # fmt: skip


def _valkey_store(run: RunInfo) -> str:
    v = run.valkey
    return (f"- {v.get('version')} on the same machine, database {v.get('db')} (appendonly={v.get('appendonly')}, "
            f"save={v.get('save')}, maxmemory={v.get('maxmemory')})")  # fmt: skip


def _demote(lines: Sequence[str]) -> list[str]:
    """Headings one level down, under the family's own ``##`` heading."""
    return ["#" + line if line.startswith("#") else line for line in lines]


def render_postgres(
    run: RunInfo, results: Sequence[SystemResult], limit: PgbenchResult, targets: Sequence[Target]
) -> str:
    lines = [
        *_head(run, "PostgreSQL", targets),
        *_context_section(run, results, _pg_store(run)),
        *_pgbench_section(limit, results),
        *_common_sections(results, "Each call is its own autocommit INSERT."),
        *_settings_section(results, _PG_COMMON), *_problems_section(results),
    ]  # fmt: skip
    return _family("postgres", "PostgreSQL family", lines)


def _common_sections(results: Sequence[SystemResult], sync_note: str) -> list[str]:
    """Sections 1 to 6, the same in every family but for what one sync enqueue costs."""
    return [
        *_rate_section("1. Enqueue one by one, sync (`task.enqueue()` in a loop)", results, sync_rate, sync_note),
        *_rate_section("2. Enqueue one by one, async (`await task.aenqueue()`)", results, async_rate,
                       "One event loop (asyncio), awaiting each call in turn."),
        *_rate_section("3. Bulk enqueue (each system's own bulk API)", results, bulk_rate,
                       "Calls of 1,000 tasks each: " + "; ".join(
                           f"{r.name} `{r.bulk_api}`" for r in results if r.bulk_api) + "."),
        "## 4. Process rate: one worker process, no-op tasks", "",
        "Tasks/s = tasks ÷ (worker spawn → the last task's start); steady = first → last task (no start-up). "
        "The median round's run (its steady rate, start-up and check) is shown. " + ROUNDS_NOTE, "",
        *_process_section(results), *_tuning_section(results),
        "## 5. Pickup latency with an idle worker", "",
        "One task at a time; latency = the task body's start − the moment just before `enqueue()`.", "",
        *_latency_section(results),
        "## 6. Worker peak RSS (during the process-rate run)", "",
        "`VmHWM` from `/proc`: the largest process, and the sum over the worker's process tree.", "",
        *_memory_section(results),
    ]  # fmt: skip


def _family(name: str, title: str, lines: Sequence[str]) -> str:
    body = "\n".join(_demote(lines)).rstrip()
    return f"<!-- family:{name} -->\n## {title}\n\n{body}\n<!-- /family:{name} -->\n"


def _limit_section(limits: Sequence[BenchmarkLine], results: Sequence[SystemResult]) -> list[str]:
    lines = ["## Physical limit: redis-benchmark", "",
             "One client; SET and LPUSH requests/s, one round trip each, then 100 per round trip (`-P 100`):", ""]  # fmt: skip
    for limit in limits:
        found = ", ".join(f"{name} **{rate:,.0f}/s**" for name, rate in limit.rates.items())
        lines.append(f"- `{limit.command}`: {found or 'not measured: ' + str(limit.error)}")
    mine = next((sync_rate(r) for r in results if r.name == "vtasks"), None)
    single = limits[0].rates.get("LPUSH") if limits else None
    if mine and single:
        lines += [
            "",
            f"vtasks' one-by-one sync enqueue is **{mine / single:.0%}** of one-client LPUSH round trips.",
        ]
    return lines + [""]


def _floor_section(floor: FloorLine, results: Sequence[SystemResult]) -> list[str]:
    """The pickup floor before and after the systems ran, and each system's p99 against it."""
    lines = ["## Physical limit: pickup floor", "",
             "No task system: valkey-py LPUSHes a key, a consumer blocked in BLPOP hands it to a waiting "
             "thread, which records it as the tasks do; timed as section 5 times a task (the same client "
             f"loop), before and after the systems ran (`benchmarks/{floor.command}`).", ""]  # fmt: skip
    if not floor.latencies:
        return [*lines, f"Not measured: {floor.error}", ""]
    for when, latency in zip(("before", "after"), floor.latencies, strict=False):
        lines.append(
            f"- {when}: p50 **{_num(latency.percentile(50), 2)} ms**, p99 **{_num(latency.percentile(99), 2)} ms**, "
            f"max {_num(latency.percentile(100), 2)} ms ({len(latency.samples_ms)} samples)"
        )
    best = min(f.percentile(99) or 0.0 for f in floor.latencies)
    shares = [f"{r.name} {mine / best:.2f}×" for r in results if (mine := p99(r)) and best]
    if shares:
        lines += ["", f"p99 pickup ÷ the lower floor p99: {', '.join(shares)}."]
    return lines + [""]


def _sleep_section(results: Sequence[SystemResult]) -> list[str]:
    rows = [
        [r.name, str(s.concurrency), f"{s.n:,}", _num(s.sleep_rate), f"{s.n / s.concurrency * s.sleep_seconds:.2f}",
         _num(s.startup_seconds, 2), _num(s.peak_process_mb, 1), s.check.text() if s.check else "—"]
        for r in results for s in r.sleep
    ]  # fmt: skip
    header = [
        "system",
        "concurrency",
        "tasks",
        "tasks/s",
        "ideal s",
        "startup s",
        "worker MB",
        "check",
    ]
    return _table(header, rows) if rows else ["Not measured.", ""]


def render_valkey(
    run: RunInfo,
    results: Sequence[SystemResult],
    limits: Sequence[BenchmarkLine],
    floor: FloorLine,
    targets: Sequence[Target],
) -> str:
    lines = [
        *_head(run, "Valkey", targets),
        *_context_section(run, results, _valkey_store(run)),
        *_limit_section(limits, results),
        *_floor_section(floor, results),
        *_common_sections(results, "Each call is its own round trip (Celery: `task.delay()`)."),
        "## 7. Tasks that sleep 50 ms", "",
        "vtasks and django-vtasks: `async def` with `await asyncio.sleep(0.05)`; Celery: `time.sleep(0.05)` in its "
        "threads pool. The queue is full before the worker starts; each task records at its end, so tasks/s = "
        "tasks ÷ (the first task's start → the last task's end), without the worker's start-up. "
        "\"ideal s\" = tasks ÷ concurrency × 50 ms.", "",
        *_sleep_section(results),
        *_settings_section(results, _VALKEY_COMMON), *_problems_section(results),
    ]  # fmt: skip
    return _family("valkey", "Valkey family", lines)


def merge(existing: str, sections: dict[str, str]) -> str:
    """RESULTS.md with the sections of the families just run; the others kept from ``existing``."""
    from harness.catalog import FAMILIES

    parts = ["# Benchmark results", "", "Two families, each measured on its own store and judged against its own "
             "targets; `benchmarks/run --family postgres|valkey|all` (default all) rewrites the families it runs.", ""]  # fmt: skip
    for family in FAMILIES:
        section = sections.get(family) or _old_section(existing, family)
        if section:
            parts.append(section)
    # Sections other tools write (benchmarks/memory.py) are kept as they are.
    memory_start, memory_end = "<!-- memory -->", "<!-- /memory -->"
    if memory_start in existing and memory_end in existing:
        start, end = existing.index(memory_start), existing.index(memory_end) + len(memory_end)
        parts.append(existing[start:end] + "\n")
    return "\n".join(parts).rstrip() + "\n"


def _old_section(text: str, family: str) -> str | None:
    start, end = f"<!-- family:{family} -->", f"<!-- /family:{family} -->"
    if start not in text or end not in text:
        return None
    return text[text.index(start) : text.index(end) + len(end)] + "\n"
