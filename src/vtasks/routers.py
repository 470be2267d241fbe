"""``vtasks.routers.VTasksRouter``: keep vtasks' tables in the queue database.

With a dedicated queue database (a ``DatabaseBackend`` whose ``OPTIONS["database_alias"]`` names
it), add ``DATABASE_ROUTERS = ["vtasks.routers.VTasksRouter", ...]`` so that ``migrate vtasks
--database queue`` creates the tables there and ``migrate`` on any other database leaves them
out. The backends and workers always name their database, so queue traffic never depends on the
router; it also sends a bare ``TaskRecord.objects`` query (a shell, a custom report) there.

The queue databases are read from ``TASKS``: every vtasks ``DatabaseBackend`` entry's
``database_alias`` (default ``"default"``). The router has no opinion on any other app: put your
own router after it to keep, say, ``auth`` out of the queue database.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.module_loading import import_string

APP_LABEL = "vtasks"


def queue_databases(tasks: dict[str, Any] | None = None) -> list[str]:
    """The database aliases of the ``TASKS`` entries that are vtasks database backends, in order."""
    from vtasks.backends.database import DatabaseBackend

    found: list[str] = []
    for entry in (settings.TASKS if tasks is None else tasks).values():
        try:
            backend = import_string(entry.get("BACKEND", ""))
        except ImportError:
            continue
        if isinstance(backend, type) and issubclass(backend, DatabaseBackend):
            alias = (entry.get("OPTIONS") or {}).get("database_alias", "default")
            if alias not in found:
                found.append(alias)
    return found


class VTasksRouter:
    """Routes the ``vtasks`` app's models to its queue database (see the module docstring)."""

    def db_for_read(self, model: type[Any], **hints: Any) -> str | None:
        return self._queue_database(model)

    def db_for_write(self, model: type[Any], **hints: Any) -> str | None:
        return self._queue_database(model)

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        return None  # vtasks' models relate to nothing

    def allow_migrate(
        self, db: str, app_label: str, model_name: str | None = None, **hints: Any
    ) -> bool | None:
        if app_label != APP_LABEL:
            return None
        return db in queue_databases()

    @staticmethod
    def _queue_database(model: type[Any]) -> str | None:
        if model._meta.app_label != APP_LABEL:
            return None
        found = queue_databases()
        # Several queue databases (one per TASKS alias): no single answer; the backends name theirs.
        return found[0] if len(found) == 1 else None
