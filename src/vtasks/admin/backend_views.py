"""Pages that read a backend rather than a table, so they serve the database and the Valkey
backend alike: pause/resume a queue, the process table, the schedules with their last and next
slot. The alias in the URL names the ``TASKS`` backend."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from vtasks.admin.common import alive_cutoff, backend_or_404, is_alive, require
from vtasks.scheduler import Schedule, schedules_from_settings


@require_POST
def queue_control(request: HttpRequest, alias: str, site: Any) -> HttpResponse:
    """POST ``queue`` and ``op`` (pause or resume), through the backend's queue controls."""
    require(request, "change_taskrecord")
    backend = backend_or_404(alias)
    queue, op = request.POST.get("queue", ""), request.POST.get("op")
    method = getattr(backend, f"{op}_queue", None) if op in ("pause", "resume") else None
    if not queue or method is None:
        messages.error(request, f"Backend {alias!r} cannot {op or 'do that to'} queue {queue!r}.")
    else:
        method(queue)
        messages.success(request, f"Queue {queue!r} of backend {alias!r}: {op}d.")
    return HttpResponseRedirect(reverse(f"{site.name}:vtasks_dashboard"))


@require_GET
def processes(request: HttpRequest, alias: str, site: Any) -> HttpResponse:
    require(request, "view_processrecord")
    backend = backend_or_404(alias)
    cutoff = alive_cutoff()
    rows = [{**row, "alive": is_alive(row["heartbeat_at"], cutoff)} for row in backend.processes()]
    return _render(request, site, "processes", alias, {"rows": rows})


@require_GET
def schedules(request: HttpRequest, alias: str, site: Any) -> HttpResponse:
    require(request, "view_scheduleslot")
    backend = backend_or_404(alias)
    now = timezone.now()
    last_slot = getattr(backend, "last_slot", None)
    rows = [
        {
            "name": s.name,
            "task": s.task,
            "when": s.cron or f"every {s.every:g} s",
            "queue": s.queue_name or "default",
            "last": _last(last_slot, s) if last_slot else None,
            "next": s.next_slot(now),
        }
        for s in schedules_from_settings()
    ]
    return _render(
        request, site, "schedules", alias, {"rows": rows, "tracks_slots": last_slot is not None}
    )


def _last(last_slot: Any, schedule: Schedule) -> datetime | str | None:
    try:
        return last_slot(schedule)
    except Exception as exc:  # e.g. a task path that no longer imports: show it, go on
        return f"unknown ({exc})"


def _render(
    request: HttpRequest, site: Any, page: str, alias: str, extra: dict[str, Any]
) -> HttpResponse:
    context = {**site.each_context(request), "title": f"{alias}: {page}", "alias": alias, **extra}
    return TemplateResponse(request, f"admin/vtasks/{page}.html", context)
