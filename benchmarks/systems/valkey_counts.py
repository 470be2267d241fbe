"""Counting what a Valkey-family system holds in the benchmark's database (used by the adapters)."""

from __future__ import annotations

import os

import redis

URL_ENV = "BENCH_VALKEY_URL"


def client() -> redis.Redis:
    return redis.Redis.from_url(os.environ.get(URL_ENV, "redis://127.0.0.1:6379/15"))


def count_keys(pattern: str) -> int:
    return sum(1 for _ in client().scan_iter(match=pattern, count=1000))


def list_lengths(*keys: str) -> int:
    conn = client()
    return sum(int(conn.llen(key)) for key in keys)


def list_lengths_matching(pattern: str) -> int:
    conn = client()
    return sum(int(conn.llen(key)) for key in conn.scan_iter(match=pattern, count=1000))


def zset_sizes(*keys: str) -> int:
    conn = client()
    return sum(int(conn.zcard(key)) for key in keys)
