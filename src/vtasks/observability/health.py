"""The health file: the supervisor rewrites it every second; ``vtasks health`` judges it.

A Kubernetes exec probe or a systemd watchdog script runs ``vtasks health``: it fails when the
file is older than the alive threshold (the supervisor's loop is stuck or gone), when the
supervisor's process-table row was last refreshed longer ago than that (the store is out of
reach: the row's heartbeat, and the workers' with it, have stopped) or when a child
slot is crash-looping (the supervisor itself keeps the other children running meanwhile).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

#: Crashes in a row after which a slot counts as crash-looping.
CRASH_LOOP = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Health:
    pid: int
    written_at: float
    children_expected: int
    children_running: int
    crash_looping: list[str] = field(default_factory=list)
    #: Wall time of the supervisor's last successful process-table heartbeat (its start while it
    #: has none yet); ``None``: the supervisor keeps no row.
    row_heartbeat_at: float | None = None


def write(path: str | os.PathLike[str], health: Health) -> None:
    """Replace the file atomically, so a reader never sees half of it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}")
    temporary.write_text(json.dumps(asdict(health)))
    os.replace(temporary, target)


def judge(
    path: str | os.PathLike[str], max_age: float, now: float | None = None, check_row: bool = True
) -> list[str]:
    """What is wrong with the health the file reports (empty: healthy)."""
    try:
        data = json.loads(Path(path).read_text())
        health = Health(**data)
    except FileNotFoundError:
        return [f"{path}: no health file (is the supervisor running?)"]
    except (ValueError, TypeError) as exc:
        return [f"{path}: unreadable health file ({exc})"]
    problems = []
    age = (time.time() if now is None else now) - health.written_at
    if age > max_age:
        problems.append(f"{path}: last written {age:.0f}s ago (stale after {max_age:g}s)")
    if health.row_heartbeat_at is not None and check_row:
        row_age = (time.time() if now is None else now) - health.row_heartbeat_at
        if row_age > max_age:
            problems.append(
                f"process table: the supervisor's row was last refreshed {row_age:.0f}s ago "
                f"(stale after {max_age:g}s; is the store reachable?)"
            )
    if health.crash_looping:
        problems.append(f"crash-looping: {', '.join(health.crash_looping)}")
    return problems
