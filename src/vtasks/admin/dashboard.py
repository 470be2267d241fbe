"""The one-page dashboard: per backend, its queues (depth, oldest age, throughput and failures of
the last minutes, pause/resume), its live processes by kind, and a throughput chart.

Throughput comes from ``finished_at`` on the database backend (tasks finished since a moment 15
minutes ago). Finished records on Valkey are hashes reachable only by a scan, so there it comes from
the per-queue, per-minute counters that the finishing scripts keep (``finished_per_minute``: one
pipeline per page load): whole minutes, from the first one starting in the window to the current
one. A backend with neither shows "n/a".
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count
from django.db.models.functions import TruncMinute
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from vtasks.admin.chart import HEIGHT, WIDTH, Bar, bars
from vtasks.admin.common import alive_cutoff, is_alive, require, vtasks_backends

WINDOW_MINUTES = 15


@dataclass(slots=True, kw_only=True)
class Panel:
    """What the dashboard shows of one backend."""

    alias: str
    kind: str
    queues: list[dict[str, Any]] = field(default_factory=list)
    processes: dict[str, dict[str, int]] = field(default_factory=dict)
    #: ``None``: this backend stores nothing to count throughput from.
    chart: list[Bar] | None = None
    can_pause: bool = False
    has_task_pages: bool = False
    error: str | None = None


def dashboard(request: HttpRequest, site: Any) -> HttpResponse:
    require(request, "view_taskrecord")
    panels = [_panel(alias, backend) for alias, backend in vtasks_backends().items()]
    context = {
        **site.each_context(request),
        "title": "vtasks dashboard",
        "panels": panels,
        "window": WINDOW_MINUTES,
        "chart_width": WIDTH,
        "chart_height": HEIGHT,
        "can_change": request.user.has_perm("vtasks.change_taskrecord"),
    }
    return TemplateResponse(request, "admin/vtasks/dashboard.html", context)


def _panel(alias: str, backend: Any) -> Panel:
    panel = Panel(
        alias=alias,
        kind="database" if hasattr(backend, "db_alias") else "valkey",
        can_pause=hasattr(backend, "pause_queue") and hasattr(backend, "resume_queue"),
        has_task_pages=hasattr(backend, "list_tasks"),
    )
    try:
        _fill(panel, backend)
    except Exception as exc:  # one unreachable server must not take the whole page down
        panel.error = f"{type(exc).__name__}: {exc}"
    return panel


def _fill(panel: Panel, backend: Any) -> None:
    now = timezone.now()
    since = now - timedelta(minutes=WINDOW_MINUTES)
    depths = backend.queue_depths()
    finished = _finished(backend, since, list(depths))
    per_queue: Counter[tuple[str, str]] = Counter()
    for (queue, _minute, status), count in (finished or {}).items():
        per_queue[queue, status] += count
    for name, depth in depths.items():
        done = per_queue[name, "SUCCESSFUL"] + per_queue[name, "FAILED"]
        panel.queues.append({
            "name": name, **depth,
            "per_minute": None if finished is None else round(done / WINDOW_MINUTES, 2),
            "recent_failures": None if finished is None else per_queue[name, "FAILED"],
        })  # fmt: skip
    panel.processes = _by_kind(backend.processes(), alive_cutoff(now))
    if finished is not None:
        panel.chart = bars(_minutes(finished, since))


def _finished(
    backend: Any, since: datetime, queues: list[str]
) -> dict[tuple[str, datetime, str], int] | None:
    """Tasks finished since ``since``, counted per (queue, minute, status); ``None`` when the
    backend keeps nothing to count them from."""
    if hasattr(backend, "db_alias"):
        return _finished_rows(backend, since)
    if hasattr(backend, "finished_per_minute"):
        return backend.finished_per_minute(since, queues)
    return None


def _finished_rows(backend: Any, since: datetime) -> dict[tuple[str, datetime, str], int]:
    """``_finished`` from the task table's ``finished_at``."""
    from vtasks.models import TaskRecord

    rows = (
        TaskRecord.objects.using(backend.db_alias)
        .filter(backend=backend.alias, finished_at__gte=since)
        .annotate(minute=TruncMinute("finished_at"))
        .values("queue_name", "minute", "status")
        .annotate(n=Count("seq"))
    )
    return {(r["queue_name"], r["minute"], r["status"]): r["n"] for r in rows}


def _minutes(
    finished: dict[tuple[str, datetime, str], int], since: datetime
) -> list[tuple[str, int, int]]:
    """``(HH:MM, successful, failed)`` for each minute of the window, oldest first."""
    start = since.replace(second=0, microsecond=0) + timedelta(minutes=1)
    slots = [start + timedelta(minutes=i) for i in range(WINDOW_MINUTES)]
    ok: Counter[datetime] = Counter()
    failed: Counter[datetime] = Counter()
    for (_queue, minute, status), count in finished.items():
        (failed if status == "FAILED" else ok)[minute] += count
    return [(f"{m:%H:%M}", ok[m], failed[m]) for m in slots]


def _by_kind(rows: list[dict[str, Any]], cutoff: datetime) -> dict[str, dict[str, int]]:
    kinds: dict[str, dict[str, int]] = {}
    for row in rows:
        counts = kinds.setdefault(row["kind"], {"alive": 0, "dead": 0})
        counts["alive" if is_alive(row["heartbeat_at"], cutoff) else "dead"] += 1
    return dict(sorted(kinds.items()))
