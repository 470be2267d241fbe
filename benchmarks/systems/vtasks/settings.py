"""vtasks (this repository): the database backend; its worker picks its driver itself."""

from __future__ import annotations

import importlib.util

from systems.base import *  # noqa: F403


def _driver_options() -> dict[str, str]:
    """Force the ORM driver only while ``vtasks.drivers.postgres`` is an empty folder (work in progress).

    Once the package exists, vtasks' own ``auto`` choice (psycopg's async pool on PostgreSQL) stands.
    """
    spec = importlib.util.find_spec("vtasks.drivers.postgres")
    return {} if spec is not None and spec.origin is not None else {"DRIVER": "sql"}


INSTALLED_APPS = ["vtasks"]
TASKS = {
    "default": {
        "BACKEND": "vtasks.backends.database.DatabaseBackend",
        "QUEUES": [],
        "OPTIONS": _driver_options(),
    }
}
