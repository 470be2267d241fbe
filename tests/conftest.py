"""Test set-up: Django with three real databases (SQLite, PostgreSQL, MariaDB), migrated once.

A server that does not answer drops its alias locally (its tests skip) and fails the run when
``CI=true``: CI never silently skips a database.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault(
    "VTASKS_TEST_SQLITE", os.path.join(tempfile.mkdtemp(prefix="vtasks-tests-"), "db.sqlite3")
)

SERVERS = {"pg": 5432, "mysql": 3306}


def _answers(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _choose_databases() -> list[str]:
    wanted = os.environ.get("VTASKS_TEST_DATABASES", "default,pg,mysql").split(",")
    down = [alias for alias in wanted if alias in SERVERS and not _answers(SERVERS[alias])]
    if down and os.environ.get("CI") == "true":
        raise pytest.UsageError(
            f"CI: database server(s) down for {down}; start them (scripts/ensure-services)"
        )
    return [alias for alias in wanted if alias not in down]


def _create_databases(aliases: list[str]) -> None:
    name = os.environ.get("VTASKS_TEST_DB_NAME", "vtasks_test")
    if "pg" in aliases:
        import psycopg

        with psycopg.connect(
            "host=127.0.0.1 user=postgres dbname=postgres", autocommit=True
        ) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(f'CREATE DATABASE "{name}"')
    if "mysql" in aliases:
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", user="root")
        try:
            conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
        finally:
            conn.close()


def pytest_configure(config: pytest.Config) -> None:
    aliases = _choose_databases()
    os.environ["VTASKS_TEST_DATABASES"] = ",".join(aliases)
    _create_databases(aliases)
    import django
    from django.core.management import call_command

    django.setup()
    for alias in aliases:
        call_command("migrate", database=alias, verbosity=0)


def db_aliases() -> list[str]:
    """The database (and TASKS) aliases this run tests: a subset of default (SQLite), pg, mysql."""
    from django.conf import settings

    return [alias for alias in ("default", "pg", "mysql") if alias in settings.DATABASES]


@pytest.fixture(params=["default", "pg", "mysql"], ids=["sqlite", "postgres", "mariadb"])
def alias(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database alias (equal to its TASKS alias), with vtasks' tables emptied before the test."""
    if request.param not in db_aliases():
        pytest.skip(f"database {request.param} is not available")
    clear_tables(request.param)
    yield request.param


def clear_tables(db_alias: str) -> None:
    from vtasks.models import ProcessRecord, TaskRecord, UniqueLock

    for model in (TaskRecord, ProcessRecord, UniqueLock):
        model.objects.using(db_alias).all().delete()


@pytest.fixture
def settings_override() -> Iterator:
    """``settings_override(alias, **OPTIONS)`` merges OPTIONS into TASKS[alias] for the test."""
    from django.test import override_settings

    active = []

    def apply(task_alias: str, **options: object) -> None:
        from django.conf import settings

        entry = settings.TASKS[task_alias]
        changed = {
            **settings.TASKS,
            task_alias: {**entry, "OPTIONS": {**entry.get("OPTIONS", {}), **options}},
        }
        override = override_settings(TASKS=changed)
        override.enable()
        active.append(override)

    yield apply
    for override in reversed(active):
        override.disable()
