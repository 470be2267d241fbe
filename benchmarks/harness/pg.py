"""PostgreSQL chores of the harness: databases per system, emptying tables, server facts, pgbench."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from harness.config import PgServer


def connect(server: PgServer, dbname: str = "postgres") -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=server.host, port=server.port, user=server.user, password=server.password or None,
        dbname=dbname, autocommit=True, connect_timeout=10,
    )  # fmt: skip


def recreate_database(server: PgServer, name: str) -> None:
    with connect(server) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(server: PgServer, name: str) -> None:
    with connect(server) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _public_tables(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
    ).fetchall()
    return [row[0] for row in rows]


def populated_tables(server: PgServer, name: str) -> set[str]:
    """Tables that hold rows right after ``migrate`` (kept when the harness empties the others)."""
    with connect(server, name) as conn:
        found = set()
        for table in _public_tables(conn):
            query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table))
            if conn.execute(query).fetchone()[0]:  # type: ignore[index]
                found.add(table)
        return found


def empty_tables(server: PgServer, name: str, keep: set[str]) -> None:
    """TRUNCATE every table the system filled since ``migrate``, so each phase starts from empty."""
    with connect(server, name) as conn:
        tables = [t for t in _public_tables(conn) if t not in keep and t != "django_migrations"]
        if tables:
            names = sql.SQL(", ").join(sql.Identifier(t) for t in tables)
            conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(names))


def server_facts(server: PgServer) -> dict[str, str]:
    with connect(server) as conn:
        facts = {"version": conn.execute("SHOW server_version").fetchone()[0]}  # type: ignore[index]
        for setting in ("synchronous_commit", "fsync", "shared_buffers", "max_connections"):
            query = sql.SQL("SHOW {}").format(sql.Identifier(setting))
            facts[setting] = conn.execute(query).fetchone()[0]  # type: ignore[index]
        return facts


@dataclass(frozen=True, slots=True, kw_only=True)
class PgbenchResult:
    tps: float | None
    command: str
    error: str | None = None


_TPS = re.compile(
    r"tps = ([0-9.]+) \((?:without initial connection time|excluding connections establishing)\)"
)


def pgbench_insert_rate(server: PgServer, work_dir: Path, seconds: int) -> PgbenchResult:
    """One client, autocommit, one ``INSERT`` of one small row per transaction: the physical limit."""
    dbname = "vtasks_bench_pgbench"
    recreate_database(server, dbname)
    try:
        with connect(server, dbname) as conn:
            conn.execute(
                "CREATE TABLE bench_insert (id bigserial PRIMARY KEY, payload text NOT NULL)"
            )
        script = work_dir / "pgbench-insert.sql"
        script.write_text("INSERT INTO bench_insert (payload) VALUES ('x');\n")
        argv = [
            "pgbench", "-h", server.host, "-p", str(server.port), "-U", server.user,
            "-n", "-c1", f"-T{seconds}", "-f", str(script), dbname,
        ]  # fmt: skip
        shown = f"pgbench -n -c1 -T{seconds} -f {script.name}  # {script.read_text().strip()}"
        return _run_pgbench(argv, shown, server, seconds)
    finally:
        drop_database(server, dbname)


def _run_pgbench(argv: list[str], command: str, server: PgServer, seconds: int) -> PgbenchResult:
    if shutil.which("pgbench") is None:
        return PgbenchResult(tps=None, command=command, error="pgbench is not installed")
    env = {**os.environ, "PGPASSWORD": server.password} if server.password else None
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, env=env)
    except subprocess.TimeoutExpired:
        return PgbenchResult(tps=None, command=command, error="pgbench timed out")
    match = _TPS.search(done.stdout)
    if done.returncode != 0 or match is None:
        return PgbenchResult(tps=None, command=command, error=(done.stderr or done.stdout)[-500:])
    return PgbenchResult(tps=float(match.group(1)), command=command)
