"""The pickup floor: the latency a bare Python producer and consumer get from this Redis.

    python floor.py worker   # BLPOP a list; each key goes to a waiting thread that records it
    python floor.py client [--samples N --gap S ...]   # LPUSH one key at a time, timed

No Django and no task system: valkey-py's sync client pushes a key to a list, a consumer blocked
in BLPOP hands the key to a thread waiting for work, and that thread records it with the append
the benchmark's tasks use (``benchtasks.record``). The client times each key exactly as
``client.py latency`` times a task (``_sample_latency``), so a system's pickup p99 can be read
against this one: the part of it that is the machine's (three processes waking on two CPUs) and
the part that is the system's own work.

Both read ``BENCH_VALKEY_URL``; the worker records under ``BENCH_OUT_DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from client import _sample_latency, _wait_for, add_sampling_arguments

LIST_KEY = "bench:floor"
STOP = "stop"


def _connect() -> Any:
    import valkey

    return valkey.Valkey.from_url(os.environ.get("BENCH_VALKEY_URL", "redis://127.0.0.1:6379/15"))


def worker() -> int:
    from benchtasks.record import record

    keys: queue.SimpleQueue[str] = queue.SimpleQueue()

    def run() -> None:
        while True:
            record(keys.get())

    threading.Thread(target=run, daemon=True).start()
    conn = _connect()
    while True:
        item = conn.blpop([LIST_KEY], timeout=1)
        if item is None:
            continue
        key = item[1].decode()
        if key == STOP:
            return 0
        keys.put(key)


class _Push:
    """What ``_sample_latency`` calls ``enqueue`` on: one LPUSH."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def enqueue(self, key: str) -> None:
        self.conn.lpush(LIST_KEY, key)


def client(args: argparse.Namespace) -> dict[str, Any]:
    from benchtasks.completions import CompletionReader

    reader = CompletionReader(Path(args.out_dir))
    push = _Push(_connect())
    push.conn.delete(LIST_KEY)
    try:
        push.enqueue(f"{args.prefix}probe")
        if _wait_for(reader, f"{args.prefix}probe", args.ready_timeout) is None:
            return {"error": "the floor's consumer recorded no probe", "samples_ms": []}
        time.sleep(args.idle)
        return _sample_latency(push, reader, args)
    finally:
        push.enqueue(STOP)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    roles = parser.add_subparsers(dest="role", required=True)
    roles.add_parser("worker")
    sampling = roles.add_parser("client")
    sampling.add_argument("--out-dir", default=os.environ.get("BENCH_OUT_DIR", "."))
    add_sampling_arguments(sampling, prefix="floor")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.role == "worker":
        return worker()
    print(json.dumps(client(args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
