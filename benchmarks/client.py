"""The in-Django half of the harness: run one measurement inside one system's project.

    python client.py --system NAME [--task-kind sync|async] COMMAND [options]

Commands print one JSON object on the last line of stdout:
``info`` (versions, driver), ``enqueue`` (sync, async or bulk; timed), ``latency`` (pickup latency
against a running worker), ``counts`` (rows stored and rows not finished).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent


def _setup(system: str) -> ModuleType:
    """Set Django up with ``systems.<system>.settings``; returns the system's adapter module."""
    sys.path.insert(0, str(HERE))
    os.environ["DJANGO_SETTINGS_MODULE"] = f"systems.{system}.settings"
    import django

    django.setup()
    return importlib.import_module(f"systems.{system}.adapter")


def _task(adapter: ModuleType, kind: str) -> Any:
    """The task to enqueue: the adapter's own (Celery), else one of ``benchtasks.tasks``."""
    if hasattr(adapter, "task"):
        return adapter.task(kind)
    from benchtasks import tasks

    return {"async": tasks.anoop, "sleep": tasks.asleep}.get(kind, tasks.noop)


def _keys(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- enqueue ---------------------------------------------------------------------------------------
def enqueue_sync(task: Any, keys: Sequence[str]) -> float:
    from django.db import connection

    connection.ensure_connection()
    start = time.perf_counter()
    for key in keys:
        task.enqueue(key)
    return time.perf_counter() - start


def enqueue_async(task: Any, keys: Sequence[str]) -> float:
    from asgiref.sync import sync_to_async
    from django.db import connections

    async def run() -> float:
        # Open the connection on the thread that sync_to_async uses, outside the timing.
        await sync_to_async(lambda: connections["default"].ensure_connection())()
        start = time.perf_counter()
        for key in keys:
            await task.aenqueue(key)
        return time.perf_counter() - start

    return asyncio.run(run())


def enqueue_bulk(adapter: ModuleType, task: Any, keys: Sequence[str], chunk: int) -> float:
    from django.db import connection

    connection.ensure_connection()
    start = time.perf_counter()
    for part in _chunks(keys, chunk):
        adapter.enqueue_many(task, part)
    return time.perf_counter() - start


def cmd_enqueue(adapter: ModuleType, task: Any, args: argparse.Namespace) -> dict[str, Any]:
    keys = _keys(args.prefix, args.n)
    if args.mode == "bulk":
        if adapter.BULK_API is None:
            return {"n": 0, "unsupported": True}
        seconds = enqueue_bulk(adapter, task, keys, args.chunk)
    elif args.mode == "async":
        if getattr(adapter, "ASYNC_API", "aenqueue") is None:
            return {"n": 0, "unsupported": True}
        seconds = enqueue_async(task, keys)
    else:
        seconds = enqueue_sync(task, keys)
    return {"n": len(keys), "seconds": seconds, "rate": len(keys) / seconds}


# -- pickup latency --------------------------------------------------------------------------------
def _wait_for(reader: Any, key: str, timeout: float) -> float | None:
    """Poll the completion logs until ``key`` shows up; its recorded start time, or ``None``."""
    deadline = time.monotonic() + timeout
    while key not in reader.first_seen:
        if time.monotonic() > deadline:
            return None
        time.sleep(0.001)
        reader.poll()
    return reader.first_seen[key]


def cmd_latency(task: Any, args: argparse.Namespace) -> dict[str, Any]:
    from benchtasks.completions import CompletionReader
    from django.db import connection

    reader = CompletionReader(Path(args.out_dir))
    connection.ensure_connection()
    task.enqueue(f"{args.prefix}probe")
    if _wait_for(reader, f"{args.prefix}probe", args.ready_timeout) is None:
        return {
            "error": f"the worker ran no probe task within {args.ready_timeout:g}s",
            "samples_ms": [],
        }
    time.sleep(args.idle)  # Let the worker settle into its idle state.
    return _sample_latency(task, reader, args)


def _sample_latency(task: Any, reader: Any, args: argparse.Namespace) -> dict[str, Any]:
    samples: list[float] = []
    missed: list[str] = []
    deadline = time.monotonic() + args.budget
    for key in _keys(args.prefix, args.samples):
        if time.monotonic() > deadline:
            break
        before = time.monotonic()
        task.enqueue(key)
        started = _wait_for(reader, key, args.sample_timeout)
        if started is None:
            missed.append(key)
        else:
            samples.append((started - before) * 1000.0)
        time.sleep(args.gap)
    keys = [f"{args.prefix}probe", *_keys(args.prefix, len(samples) + len(missed))]
    return {"samples_ms": samples, "missed": missed, "keys": keys}


# -- counts and info -------------------------------------------------------------------------------
def cmd_counts(adapter: ModuleType) -> dict[str, Any]:
    return {"stored": adapter.stored(), "unfinished": adapter.unfinished()}


def cmd_info(adapter: ModuleType) -> dict[str, Any]:
    import django

    return {"django": django.get_version(), "bulk_api": adapter.BULK_API, **adapter.describe()}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--system", required=True)
    parser.add_argument("--task-kind", choices=("sync", "async", "sleep"), default="sync")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("info")
    commands.add_parser("counts")
    enqueue = commands.add_parser("enqueue")
    enqueue.add_argument("--mode", choices=("sync", "async", "bulk"), required=True)
    enqueue.add_argument("--n", type=int, required=True)
    enqueue.add_argument("--prefix", required=True)
    enqueue.add_argument("--chunk", type=int, default=1000)
    latency = commands.add_parser("latency")
    latency.add_argument("--out-dir", required=True)
    add_sampling_arguments(latency, prefix="lat")
    return parser


def add_sampling_arguments(parser: argparse.ArgumentParser, *, prefix: str) -> None:
    """The options ``_sample_latency`` reads (``floor.py`` samples with them too)."""
    parser.add_argument("--prefix", default=prefix)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--gap", type=float, default=0.02)
    parser.add_argument("--idle", type=float, default=1.5)
    parser.add_argument("--budget", type=float, default=60.0)
    parser.add_argument("--ready-timeout", type=float, default=60.0)
    parser.add_argument("--sample-timeout", type=float, default=5.0)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    adapter = _setup(args.system)
    task = _task(adapter, args.task_kind)
    commands: dict[str, Callable[[], dict[str, Any]]] = {
        "info": lambda: cmd_info(adapter),
        "counts": lambda: cmd_counts(adapter),
        "enqueue": lambda: cmd_enqueue(adapter, task, args),
        "latency": lambda: cmd_latency(task, args),
    }
    print(json.dumps(commands[args.command]()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
