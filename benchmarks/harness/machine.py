"""Facts recorded with the results: the machine, the versions of every package, the vtasks commit."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from harness.config import REPO_DIR

PACKAGES = (
    "vtasks", "django-vtasks", "django-tasks-db", "dj-queue", "Django", "asgiref", "psycopg",
    "psycopg-binary", "psycopg-pool", "uvloop", "orjson", "valkey", "libvalkey", "django-vcache", "celery",
    "kombu", "redis",
)  # fmt: skip


def _meminfo_total_gib() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine() -> dict[str, str]:
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "memory": _meminfo_total_gib(),
        "cpu": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load": load_average(),
    }


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: other work competes with the benchmark for the CPUs."""
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(REPO_DIR), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def vtasks_revision() -> str:
    head = _git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = _git("status", "--porcelain", "--", "src")
    return f"{head} (with uncommitted changes in src/)" if dirty else head


def pgbench_version() -> str:
    try:
        done = subprocess.run(["pgbench", "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "not found"
    return done.stdout.strip()
