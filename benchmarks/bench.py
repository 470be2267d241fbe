"""Benchmark vtasks against its peers on one PostgreSQL, one system after another; write RESULTS.md.

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
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import machine, pg
from harness.catalog import SYSTEMS, System
from harness.config import FULL, QUICK, RESULTS_JSON, RESULTS_MD, WORK_DIR, PgServer
from harness.model import SystemResult
from harness.report import RunInfo, render
from harness.runner import run_system
from harness.targets import judge, p50, p99, process_rate, sync_rate


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller N everywhere (about a fifth)")
    parser.add_argument("--systems", default=",".join(s.name for s in SYSTEMS),
                        help="comma-separated subset (default: all)")  # fmt: skip
    parser.add_argument("--task-kind", choices=("sync", "async"), default="sync",
                        help="the no-op task's body: a def (default) or an async def")  # fmt: skip
    parser.add_argument(
        "--no-tune", action="store_true", help="use each system's first concurrency candidate"
    )
    parser.add_argument(
        "--output", type=Path, default=RESULTS_MD, help="where to write the markdown"
    )
    return parser


def _chosen(names: str) -> list[System]:
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = set(wanted) - {s.name for s in SYSTEMS}
    if unknown:
        raise SystemExit(f"unknown system(s): {', '.join(sorted(unknown))}")
    return [s for s in SYSTEMS if s.name in wanted]


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


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    scale = QUICK if args.quick else FULL
    server = PgServer.from_env()
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    print(
        f"PostgreSQL {pg.server_facts(server)['version']} at {server.host}:{server.port}",
        flush=True,
    )
    limit = pg.pgbench_insert_rate(server, WORK_DIR, scale.pgbench_seconds)
    print(f"pgbench one-client INSERT: {limit.tps or limit.error}", flush=True)
    results = []
    for system in _chosen(args.systems):
        print(f"{system.name} ...", flush=True)
        result = run_system(system, scale, server, task_kind=args.task_kind, tune=not args.no_tune)
        print(_summary(result), flush=True)
        results.append(result)
    targets = judge(results, limit.tps)
    info = RunInfo(
        command=_command(argv), date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        scale="quick" if args.quick else "full", task_kind=args.task_kind,
        seconds=time.monotonic() - started, machine=machine.machine(), versions=machine.versions(),
        postgres=pg.server_facts(server), pgbench_version=machine.pgbench_version(),
        vtasks_revision=machine.vtasks_revision(),
    )  # fmt: skip
    args.output.write_text(render(info, results, limit, targets))
    RESULTS_JSON.write_text(
        json.dumps([dataclasses.asdict(r) for r in results], indent=1, default=str)
    )
    print("\n".join(t.line for t in targets))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
