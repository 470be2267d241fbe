"""The Valkey adapter: the task states the database pages show, read from the backend, and the
same actions (retry, run now, delete) through the backend's methods.

One page per backend alias (``backend/<alias>/tasks/?state=…&queue=…``) lists one state at a
time; a POST acts on the ticked tasks. Orphans are RUNNING tasks whose claimer's heartbeat is
older than the alive threshold (or that is gone from the process table).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse

from vtasks.admin.common import alive_cutoff, backend_or_404, is_alive, require
from vtasks.wire import codec

STATES = {
    "pending": "pending (due)", "scheduled": "scheduled (future)", "running": "running",
    "orphaned": "orphaned (dead process)", "failed": "failed (dead letter)",
}  # fmt: skip
LIMIT = 200


def tasks(request: HttpRequest, alias: str, site: Any) -> HttpResponse:
    require(request, "view_taskrecord")
    backend = backend_or_404(alias)
    if not hasattr(backend, "list_tasks"):
        raise Http404(f"backend {alias!r} lists its tasks on the task table's own page")
    state = request.GET.get("state", "pending")
    if state not in STATES:
        raise Http404(f"no task state {state!r}")
    queue = request.GET.get("queue") or None
    if request.method == "POST":
        _act(request, backend, state, queue)
        return HttpResponseRedirect(request.get_full_path())
    context = {
        **site.each_context(request),
        "title": f"{alias}: {STATES[state]} tasks", "alias": alias, "state": state,
        "states": STATES, "queue": queue, "rows": _rows(backend, state, queue),
        "queues": list(backend.queue_depths()), "limit": LIMIT,
        "can_change": request.user.has_perm("vtasks.change_taskrecord"),
        "can_delete": request.user.has_perm("vtasks.delete_taskrecord"),
    }  # fmt: skip
    return TemplateResponse(request, "admin/vtasks/backend_tasks.html", context)


def _rows(backend: Any, state: str, queue: str | None) -> list[dict[str, Any]]:
    rows = backend.list_tasks("running" if state == "orphaned" else state, queue=queue, limit=LIMIT)
    heartbeats = {p["id"]: p["heartbeat_at"] for p in backend.processes()}
    cutoff = alive_cutoff()
    for row in rows:
        row["heartbeat"] = heartbeats.get(row["claimed_by"])
        row["alive"] = is_alive(row["heartbeat"], cutoff)
        row["error_list"] = _errors(row["errors"])
    if state == "orphaned":
        rows = [row for row in rows if not row["alive"]]
    return rows


def _errors(raw: str) -> list[dict[str, Any]]:
    try:
        value = codec.loads(raw or "[]")
    except ValueError:
        return [{"exception_class_path": "(undecodable errors)", "traceback": raw}]
    return value if isinstance(value, list) else []


def _act(request: HttpRequest, backend: Any, state: str, queue: str | None) -> None:
    action, ids = request.POST.get("action"), request.POST.getlist("ids")
    if action == "delete":
        require(request, "delete_taskrecord")
        done = backend.delete_tasks(ids)
    elif action in ("retry", "run_now"):
        require(request, "change_taskrecord")
        done = backend.run_now(ids) if action == "run_now" else _retry(backend, ids, queue)
    else:
        messages.error(request, f"Unknown action {action!r}.")
        return
    messages.success(request, f"{action.replace('_', ' ')}: {done} of {len(ids)} task(s).")


def _retry(backend: Any, ids: list[str], queue: str | None) -> int:
    """Dead letters back to READY; orphans (claimer dead now) released back to READY."""
    wanted = set(ids)
    orphans = [
        (row["id"], row["claimed_by"])
        for row in _rows(backend, "orphaned", queue)
        if row["id"] in wanted
    ]
    released = backend.release_orphans(orphans) if orphans else 0
    rest = wanted - {task_id for task_id, _ in orphans}
    return released + sum(backend.retry_failed(task_id) for task_id in sorted(rest))
