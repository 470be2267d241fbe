"""Valkey chores of the harness: flush the benchmark's database, server facts, redis-benchmark."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

from harness.config import ValkeyServer

if TYPE_CHECKING:
    import redis


def connect(server: ValkeyServer) -> redis.Redis:
    """redis-py (installed with ``celery[redis]``), imported here so the PostgreSQL family runs without it."""
    import redis

    return redis.Redis(host=server.host, port=server.port, db=server.db, socket_timeout=30)


def flush(server: ValkeyServer) -> None:
    """FLUSHDB of the benchmark's own database number only."""
    connect(server).flushdb()


def server_facts(server: ValkeyServer) -> dict[str, str]:
    conn = connect(server)
    info = conn.info("server")
    facts = {
        "version": f"{'Valkey' if 'valkey_version' in info else 'Redis'} "
        f"{info.get('valkey_version') or info.get('redis_version')}",
        "db": str(server.db),
    }
    for name in ("appendonly", "save", "maxmemory"):
        facts[name] = str(conn.config_get(name).get(name, "?")) or '""'
    return facts


@dataclass(frozen=True, slots=True, kw_only=True)
class BenchmarkLine:
    command: str  # The redis-benchmark invocation, for RESULTS.md.
    rates: dict[str, float]  # Test name (SET, LPUSH) -> requests/s.
    error: str | None = None


_RATE = re.compile(r"([A-Z]+): ([0-9.]+) requests per second")


def redis_benchmark(server: ValkeyServer, n: int, pipeline: int = 1) -> BenchmarkLine:
    """One client, SET and LPUSH; ``pipeline`` > 1 sends that many requests per round trip."""
    argv = ["redis-benchmark", "-h", server.host, "-p", str(server.port), "--dbnum", str(server.db),
            "-n", str(n), "-c", "1", "-t", "set,lpush", "-q"]  # fmt: skip
    if pipeline > 1:
        argv += ["-P", str(pipeline)]
    shown = " ".join(argv)
    if shutil.which("redis-benchmark") is None:
        return BenchmarkLine(command=shown, rates={}, error="redis-benchmark is not installed")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return BenchmarkLine(command=shown, rates={}, error="redis-benchmark timed out")
    finally:
        flush(server)
    final = [line.rsplit("\r", 1)[-1] for line in done.stdout.splitlines()]
    rates = {m.group(1): float(m.group(2)) for line in final if (m := _RATE.search(line))}
    if done.returncode != 0 or not rates:
        return BenchmarkLine(command=shown, rates={}, error=(done.stderr or done.stdout)[-300:])
    return BenchmarkLine(command=shown, rates=rates)
