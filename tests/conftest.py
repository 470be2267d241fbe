"""Test set-up: Django with three real databases (SQLite, PostgreSQL, MariaDB), migrated once, and
a Valkey/Redis server for the ``valkey`` TASKS alias.

A server that does not answer drops its alias locally (its tests skip) and fails the run when
``CI=true``: CI never silently skips a database. The Valkey keys of a run carry a prefix of their
own, so runs never clash, and only those keys are ever deleted.
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault(
    "VTASKS_TEST_SQLITE", os.path.join(tempfile.mkdtemp(prefix="vtasks-tests-"), "db.sqlite3")
)

# Subprocess workers inherit these, so they see the same keys.
os.environ.setdefault("VTASKS_TEST_VALKEY_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("VTASKS_TEST_VALKEY_PREFIX", f"vt-test-{secrets.token_hex(4)}")

SERVERS = {"pg": 5432, "mysql": 3306}


def _answers(port: int, host: str = "127.0.0.1") -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
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
            exists = "SELECT 1 FROM pg_database WHERE datname = %s"
            for db in (name, f"{name}_queue"):  # the second: tests.settings.QUEUE_DATABASE
                if not conn.execute(exists, (db,)).fetchone():
                    conn.execute(f'CREATE DATABASE "{db}"')
    if "mysql" in aliases:
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", user="root")
        try:
            conn.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
        finally:
            conn.close()


def _choose_valkey() -> None:
    """Keep the ``valkey`` alias when its server answers; in CI a silent server fails the run."""
    url = os.environ["VTASKS_TEST_VALKEY_URL"]
    if not url:
        return
    parts = urlsplit(url)
    if _answers(parts.port or 6379, parts.hostname or "127.0.0.1"):
        return
    if os.environ.get("CI") == "true":
        raise pytest.UsageError(
            f"CI: Valkey/Redis at {url} is down; start it (scripts/ensure-services)"
        )
    os.environ["VTASKS_TEST_VALKEY_URL"] = ""


def pytest_configure(config: pytest.Config) -> None:
    _choose_valkey()
    aliases = _choose_databases()
    os.environ["VTASKS_TEST_DATABASES"] = ",".join(aliases)
    _create_databases(aliases)
    import django
    from django.core.management import call_command

    django.setup()
    for alias in aliases:
        call_command("migrate", database=alias, verbosity=0)
    if "pg" in aliases:  # the queue database holds vtasks' tables only
        call_command("migrate", "vtasks", database="pgqueue", verbosity=0)


def db_aliases() -> list[str]:
    """The database (and TASKS) aliases this run tests: a subset of default (SQLite), pg, mysql."""
    from django.conf import settings

    return [alias for alias in ("default", "pg", "mysql") if alias in settings.DATABASES]


def pytest_unconfigure(config: pytest.Config) -> None:
    if valkey_available():
        from tests.storage import clear

        clear("valkey")


def valkey_available() -> bool:
    from django.conf import settings

    return "valkey" in getattr(settings, "TASKS", {})


@pytest.fixture(
    params=["default", "pg", "mysql", "valkey"], ids=["sqlite", "postgres", "mariadb", "valkey"]
)
def alias(request: pytest.FixtureRequest) -> Iterator[str]:
    """A TASKS alias (a database alias, or ``valkey``), its storage emptied before the test."""
    yield from storage_for(request.param)


@pytest.fixture(params=["default", "pg", "mysql"], ids=["sqlite", "postgres", "mariadb"])
def db_alias(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database alias only: for what holds on a database alone (transactions)."""
    yield from storage_for(request.param)


def storage_for(name: str) -> Iterator[str]:
    if name == "valkey" and not valkey_available():
        pytest.skip("Valkey/Redis is not available")
    if name != "valkey" and name not in db_aliases():
        pytest.skip(f"database {name} is not available")
    from tests.storage import clear

    clear(name)
    yield name


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


def clear_tables(db_alias: str) -> None:
    from vtasks.models import ConcurrencySlot, ProcessRecord, TaskRecord, UniqueLock

    for model in (TaskRecord, ProcessRecord, UniqueLock, ConcurrencySlot):
        model.objects.using(db_alias).all().delete()
