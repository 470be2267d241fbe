"""What every vtasks admin page shares: which database and backends it shows, liveness, access."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.tasks import task_backends
from django.utils import timezone

from vtasks.config import env

#: The setting naming the database (a ``DATABASES`` alias) whose vtasks tables the model pages
#: show, as in Django's multi-database admin recipe; default ``"default"``.
ADMIN_DATABASE = "VTASKS_ADMIN_DATABASE"


def admin_database() -> str:
    return getattr(settings, ADMIN_DATABASE, "default")


def alive_cutoff(now: datetime | None = None) -> datetime:
    """Processes whose last heartbeat is older than this are dead (``VTASKS_ALIVE_THRESHOLD``)."""
    threshold = env.runtime_value(env.ALIVE_THRESHOLD, settings)
    return (now or timezone.now()) - timedelta(seconds=threshold)


def vtasks_backends() -> dict[str, Any]:
    """The ``TASKS`` backends that report queue depths (vtasks' database and Valkey backends)."""
    found = {}
    for alias in settings.TASKS:
        backend = task_backends[alias]
        if hasattr(backend, "queue_depths") and hasattr(backend, "processes"):
            found[alias] = backend
    return found


def backend_or_404(alias: str) -> Any:
    from django.http import Http404

    backend = vtasks_backends().get(alias)
    if backend is None:
        raise Http404(f"no vtasks backend {alias!r} in TASKS")
    return backend


def require(request: HttpRequest, *codenames: str) -> None:
    """403 unless the user holds every ``vtasks.<codename>`` permission."""
    if not request.user.has_perms([f"vtasks.{name}" for name in codenames]):
        raise PermissionDenied


def is_alive(heartbeat_at: datetime | None, cutoff: datetime) -> bool:
    return heartbeat_at is not None and heartbeat_at >= cutoff
