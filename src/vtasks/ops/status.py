"""``vtasks status``: the process table and per-queue depth, from any backend that reports them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.tasks import task_backends
from django.utils import timezone


def status_lines(backend_alias: str = "default") -> list[str]:
    backend = task_backends[backend_alias]
    lines = [f"backend {backend_alias} ({type(backend).__name__})"]
    if not hasattr(backend, "queue_depths"):
        return [*lines, "  this backend reports no queue depths"]
    lines.append("queues:")
    depths: dict[str, dict[str, Any]] = backend.queue_depths()
    if not depths:
        lines.append("  (none)")
    for queue, depth in depths.items():
        age = depth.get("oldest_age")
        paused = "  PAUSED" if depth.get("paused") else ""
        lines.append(
            f"  {queue}: ready={depth.get('ready', 0)} delayed={depth.get('delayed', 0)} "
            f"running={depth.get('running', 0)} failed={depth.get('failed', depth.get('dead', 0))} "
            f"oldest={'-' if age is None else f'{age:.1f}s'}{paused}"
        )
    if hasattr(backend, "processes"):
        lines.append("processes:")
        rows = backend.processes()
        if not rows:
            lines.append("  (none)")
        for row in rows:
            lines.append(
                f"  {row['kind']} {row['id']} pid={row['pid']} host={row['hostname']} "
                f"heartbeat {_ago(row['heartbeat_at'])} ago"
            )
    return lines


def _ago(when: datetime | float) -> str:
    if isinstance(when, datetime):
        return f"{(timezone.now() - when).total_seconds():.1f}s"
    return f"{when:.1f}s"
