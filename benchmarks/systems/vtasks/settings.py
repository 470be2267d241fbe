"""vtasks (this repository): the database backend; on PostgreSQL its worker uses psycopg's pool."""

from __future__ import annotations

from systems.base import *  # noqa: F403

INSTALLED_APPS = ["vtasks"]
TASKS = {
    "default": {
        "BACKEND": "vtasks.backends.database.DatabaseBackend",
        "QUEUES": [],
        "OPTIONS": {},
    }
}
