"""Benchmark vtasks against its peers, one system after another, on PostgreSQL and on Valkey.

Run it through ``benchmarks/run`` (which builds ``benchmarks/.venv``); see README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import machine, pg, valkey
from harness.catalog import FAMILIES, SYSTEMS, System
from harness.config import (
    FULL,
    QUICK,
    RESULTS_JSON,
    RESULTS_MD,
    WORK_DIR,
    PgServer,
    Scale,
    ValkeyServer,
)
from harness.floor import FloorLine, command, measure_floor
from harness.model import SystemResult
from harness.report import RunInfo, merge, render_postgres, render_valkey
from harness.runner import run_systems
from harness.targets import judge, judge_valkey, p50, p99, process_rate, sync_rate


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller N everywhere (about a fifth)")
    parser.add_argument("--family", choices=(*FAMILIES, "all"), default="all",
                        help="the store: postgres, valkey, or both (default)")  # fmt: skip
    parser.add_argument("--systems", default="",
                        help="comma-separated subset of system names (default: all)")  # fmt: skip
    parser.add_argument("--task-kind", choices=("sync", "async"), default="sync",
                        help="the no-op task's body: a def (default) or an async def")  # fmt: skip
    parser.add_argument(
        "--no-tune", action="store_true", help="use each system's first concurrency candidate"
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS_MD, help="where to write the markdown"
    )
    return parser


def _chosen(names: str, family: str) -> list[System]:
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = set(wanted) - {s.name for s in SYSTEMS}
    if unknown:
        raise SystemExit(f"unknown system(s): {', '.join(sorted(unknown))}")
    return [s for s in SYSTEMS if s.family == family and (not wanted or s.name in wanted)]


def _summary(result: SystemResult) -> str:
    def fmt(value: float | None, unit: str) -> str:
        return (
            "—"
            if value is None
            else f"{value:,.1f}{unit}"
            if unit == "ms"
            else f"{value:,.0f}{unit}"
        )

    return (f"  {result.name}: sync {fmt(sync_rate(result), '/s')}, process {fmt(process_rate(result), '/s')}, "
            f"p50 {fmt(p50(result), 'ms')}, p99 {fmt(p99(result), 'ms')}, errors: {list(result.errors) or 'none'}")  # fmt: skip


def _command(argv: Sequence[str]) -> str:
    return os.environ.get("BENCH_COMMAND") or "python benchmarks/bench.py " + shlex.join(argv)


@dataclasses.dataclass(slots=True, kw_only=True)
class Run:
    """What ``main`` shares with each family's run."""

    args: argparse.Namespace
    scale: Scale
    server: PgServer
    broker: ValkeyServer
    started: float

    def systems(self, family: str) -> list[SystemResult]:
        chosen = _chosen(self.args.systems, family)
        print(f"{family}: {', '.join(s.name for s in chosen)}, phase by phase ...", flush=True)
        results = run_systems(chosen, self.scale, self.server, self.broker,
                              task_kind=self.args.task_kind, tune=not self.args.no_tune)  # fmt: skip
        for result in results:
            print(_summary(result), flush=True)
        return results

    def info(self, argv: Sequence[str], *, postgres: bool, on_valkey: bool) -> RunInfo:
        return RunInfo(
            command=_command(argv), date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            scale="quick" if self.args.quick else "full", task_kind=self.args.task_kind,
            seconds=time.monotonic() - self.started, machine=machine.machine(), versions=machine.versions(),
            postgres=pg.server_facts(self.server) if postgres else {},
            pgbench_version=machine.pgbench_version(), vtasks_revision=machine.vtasks_revision(),
            valkey=valkey.server_facts(self.broker) if on_valkey else {},
        )  # fmt: skip


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Family:
    """One family's figures, how to render its RESULTS.md section, and its targets' lines."""

    results: list[SystemResult]
    render: Callable[[RunInfo], str]
    targets: list[str]


def _postgres(run: Run) -> Family:
    print(f"PostgreSQL {pg.server_facts(run.server)['version']} at {run.server.host}:{run.server.port}",
          flush=True)  # fmt: skip
    limit = pg.pgbench_insert_rate(run.server, WORK_DIR, run.scale.pgbench_seconds)
    print(f"pgbench one-client INSERT: {limit.tps or limit.error}", flush=True)
    results = run.systems("postgres")
    targets = judge(results, limit.tps)
    return Family(results=results, render=lambda info: render_postgres(info, results, limit, targets),
                  targets=[t.line for t in targets])  # fmt: skip


def _valkey(run: Run) -> Family:
    print(f"{valkey.server_facts(run.broker)['version']} at {run.broker.url}", flush=True)
    n = run.scale.redis_benchmark_n
    limits = [valkey.redis_benchmark(run.broker, n), valkey.redis_benchmark(run.broker, n, 100)]
    for limit in limits:
        print(f"{limit.command}: {limit.rates or limit.error}", flush=True)
    floor = FloorLine(command=" ".join(command(run.scale)))
    measure_floor(run.broker, run.scale, floor, "before")
    results = run.systems("valkey")
    measure_floor(run.broker, run.scale, floor, "after")
    print(f"pickup floor (p50 / p99 ms): {_floors(floor)}", flush=True)
    targets = judge_valkey(results)
    return Family(results=results,
                  render=lambda info: render_valkey(info, results, limits, floor, targets),
                  targets=[t.line for t in targets])  # fmt: skip


def _floors(floor: FloorLine) -> str:
    found = [f"{f.percentile(50):.2f} / {f.percentile(99):.2f}" for f in floor.latencies]
    return ", ".join(found) or str(floor.error)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    families = FAMILIES if args.family == "all" else (args.family,)
    run = Run(args=args, scale=QUICK if args.quick else FULL, server=PgServer.from_env(),
              broker=ValkeyServer.from_env(), started=time.monotonic())  # fmt: skip
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    print(f"load average (1 / 5 / 15 min) at the start: {machine.load_average()}", flush=True)
    measured = {
        family: {"postgres": _postgres, "valkey": _valkey}[family](run) for family in families
    }
    info = run.info(argv, postgres="postgres" in families, on_valkey="valkey" in families)
    existing = args.output.read_text() if args.output.exists() else ""
    args.output.write_text(merge(existing, {f: m.render(info) for f, m in measured.items()}))
    raw = {f: [dataclasses.asdict(r) for r in m.results] for f, m in measured.items()}
    RESULTS_JSON.write_text(json.dumps(raw, indent=1, default=str))
    for family, m in measured.items():
        print(f"{family}:", *m.targets, sep="\n  ")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
