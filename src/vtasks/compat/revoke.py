"""Revoke a waiting task: it becomes FAILED with ``Revoked`` and is never claimed.

Fenced like a worker's finish: only a READY record whose attempt count is unchanged is touched, so a
task a worker claimed meanwhile (RUNNING) runs on. The database backend is handled here; a backend
with a ``revoke_waiting(task_id, error)`` method (the Valkey backend: one Lua script) does it itself.
"""

from __future__ import annotations

import traceback
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.tasks import task_backends
from django.utils import timezone

from vtasks.core.errors import Revoked
from vtasks.wire import codec


def revoke(backend_alias: str, task_id: str) -> bool:
    """Revoke ``task_id`` on the ``TASKS`` alias; whether it was still waiting (now revoked)."""
    backend = task_backends[backend_alias]
    own = getattr(backend, "revoke_waiting", None)
    if callable(own):
        return bool(own(str(task_id), _revoked_error(str(task_id))))
    from vtasks.backends.database import DatabaseBackend

    if isinstance(backend, DatabaseBackend):
        return _revoke_row(backend, str(task_id))
    raise NotImplementedError(
        f"revoke() is not supported by the {type(backend).__name__} backend ({backend_alias!r}): "
        "only the database and Valkey backends can revoke a waiting task"
    )


def _revoke_row(backend: Any, task_id: str) -> bool:
    from vtasks.models import TaskRecord, UniqueLock

    rows = TaskRecord.objects.using(backend.db_alias)
    with transaction.atomic(using=backend.db_alias):
        row = (
            rows.select_for_update()
            .filter(id=task_id, backend=backend.alias, status="READY")
            .values("attempts", "errors", "unique_key")
            .first()
        )
        if row is None:
            return False
        now = timezone.now()
        errors = codec.loads(row["errors"] or "[]") + [_revoked_error(task_id)]
        ttl = backend.options.get("FAILED_RESULT_TTL")
        updated = rows.filter(id=task_id, status="READY", attempts=row["attempts"]).update(
            status="FAILED",
            claimed_by=None,
            finished_at=now,
            errors=codec.dumps(errors),
            expires_at=None if ttl is None else now + timedelta(seconds=ttl),
        )
        if updated and row["unique_key"]:
            UniqueLock.objects.using(backend.db_alias).filter(
                key=row["unique_key"], task_id=task_id
            ).delete()
    return bool(updated)


def _revoked_error(task_id: str) -> dict[str, str]:
    exc = Revoked(f"task {task_id} was revoked before it started")
    return {
        "exception_class_path": f"{Revoked.__module__}.{Revoked.__qualname__}",
        "traceback": "".join(traceback.format_exception_only(exc)),
    }
