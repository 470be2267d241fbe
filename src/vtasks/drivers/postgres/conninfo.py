"""Read a Django ``DATABASES`` entry into what psycopg needs, without a Django connection."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg.conninfo import make_conninfo

from vtasks.core.errors import ConfigError

#: OPTIONS keys that Django's PostgreSQL backend consumes itself; libpq would reject them.
_DJANGO_ONLY = frozenset(
    {"assume_role", "context", "cursor_factory", "isolation_level", "pool", "prepare_threshold",
     "server_side_binding"}
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class Database:
    """Where and how to connect: libpq conninfo, session time zone, psycopg's prepare threshold."""

    conninfo: str
    time_zone: str
    #: Like Django, ``None`` (no server-side prepared statements) unless OPTIONS sets it, so
    #: transaction-mode PgBouncer keeps working; set ``OPTIONS["prepare_threshold"]`` to speed up.
    prepare_threshold: int | None


def from_django(db_alias: str) -> Database:
    """The connection parameters Django would use for ``db_alias`` (NAME, USER, ..., OPTIONS)."""
    from django.conf import settings
    from django.db import connections

    try:
        entry: dict[str, Any] = settings.DATABASES[db_alias]
    except KeyError:
        raise ConfigError(
            f"DATABASES[{db_alias!r}] is not defined; set the backend's OPTIONS['database_alias']"
        ) from None
    # The vendor, not the ENGINE path, so PostGIS and other PostgreSQL backends qualify too.
    # Building the wrapper opens no connection.
    if connections[db_alias].vendor != "postgresql":
        raise ConfigError(
            f"DATABASES[{db_alias!r}] uses {entry.get('ENGINE')!r}; the postgres driver needs "
            "PostgreSQL (set the backend's OPTIONS['DRIVER'] = 'sql' for other databases)"
        )
    options = dict(entry.get("OPTIONS") or {})
    name = entry.get("NAME")
    if name == "" and not options.get("service"):
        raise ConfigError(f"DATABASES[{db_alias!r}]: set NAME or OPTIONS['service']")
    params: dict[str, Any] = {k: v for k, v in options.items() if k not in _DJANGO_ONLY}
    params.update(
        dbname=name if name is not None else "postgres",
        user=entry.get("USER") or None,
        password=entry.get("PASSWORD") or None,
        host=entry.get("HOST") or None,
        port=str(entry["PORT"]) if entry.get("PORT") else None,
        client_encoding="UTF8",
    )
    params.setdefault("application_name", "vtasks")
    if name == "":
        params.pop("dbname")  # The service file names the database.
    return Database(
        conninfo=make_conninfo("", **params),
        time_zone=_time_zone(entry, settings),
        prepare_threshold=options.get("prepare_threshold"),
    )


def _time_zone(entry: dict[str, Any], settings: Any) -> str:
    """The session time zone Django itself sets on this database's connections."""
    if not settings.USE_TZ:
        return str(settings.TIME_ZONE)
    return str(entry.get("TIME_ZONE") or "UTC")
