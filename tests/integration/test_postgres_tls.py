"""vtasks on a PostgreSQL server that accepts only TLS with a password (``tls_postgres``).

The server's ``pg_hba.conf`` has one ``hostssl ... scram-sha-256`` line, so every connection that
succeeds here (Django's, the postgres driver's pool and its LISTEN connection, a ``vtasks worker``
process's) is encrypted and authenticated. The ``pgtls`` alias (``tests.pgtls_settings``) is added
for each test and removed after it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connections
from django.tasks import TaskResultStatus, task_backends
from django.test import override_settings

from tests import tasks
from tests.conftest import clear_tables
from tests.helpers import ROOT, process_table, stop_process, wait_for, work
from tests.pgtls_settings import BACKEND, ENV, PGTLS
from tests.postgres_servers import PgServer, tls_postgres  # noqa: F401
from vtasks.drivers.postgres import PostgresDriver
from vtasks.models import ProcessRecord

pytestmark = pytest.mark.timeout(120)

CLI = [sys.executable, "-m", "vtasks.cli.main", "--settings", "tests.pgtls_settings",
       "--pythonpath", str(ROOT), "--log-level", "DEBUG"]  # fmt: skip
#: Every session of the server with its TLS flag (pg_stat_ssl), by application_name.
SSL_SESSIONS = """
    SELECT a.application_name, s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
    WHERE a.backend_type = 'client backend'
"""


@contextmanager
def registered(entry: dict[str, Any]) -> Iterator[None]:
    """``entry`` as ``DATABASES[PGTLS]``, with the ``pgtls`` TASKS alias, for the block."""
    settings.DATABASES[PGTLS] = entry
    connections.configure_settings(settings.DATABASES)  # Django's defaults for the new entry
    try:
        with override_settings(TASKS={**settings.TASKS, PGTLS: BACKEND}):
            yield
    finally:
        connections[PGTLS].close()
        del connections[PGTLS]
        del settings.DATABASES[PGTLS]


@pytest.fixture(params=["require", "verify-ca", "verify-full"])
def sslmode(request: pytest.FixtureRequest, tls_postgres: PgServer) -> Iterator[str]:  # noqa: F811
    """The ``pgtls`` alias with OPTIONS ``sslmode`` (the verify modes name the test CA)."""
    with registered(tls_postgres.database(request.param)):
        call_command("migrate", "vtasks", database=PGTLS, verbosity=0)
        clear_tables(PGTLS)
        yield request.param


def sessions() -> list[tuple[str, bool]]:
    with connections[PGTLS].cursor() as cursor:
        cursor.execute(SSL_SESSIONS)
        return [(name, bool(ssl)) for name, ssl in cursor.fetchall()]


def test_the_server_refuses_connections_without_tls_or_password(
    tls_postgres: PgServer,  # noqa: F811
) -> None:
    refusals = [
        ({"sslmode": "disable"}, "no encryption"),
        ({"sslmode": "require", "password": "", "passfile": os.devnull}, "no password supplied"),
        ({"sslmode": "require", "password": "wrong"}, "password authentication failed"),
        # verify-full really verifies: the server's own certificate is no CA that signed it.
        ({"sslmode": "verify-full", "sslrootcert": str(tls_postgres.root / "certs" / "s.crt")},
         "certificate verify failed"),
    ]  # fmt: skip
    for params, reason in refusals:
        with pytest.raises(psycopg.OperationalError, match=reason):
            psycopg.connect(tls_postgres.conninfo(**params)).close()
    checked = tls_postgres.conninfo(sslmode="verify-full", sslrootcert=tls_postgres.ca_file)
    with psycopg.connect(checked) as conn:
        row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
    assert row == (True,)


def test_the_driver_conninfo_keeps_the_tls_options_and_password(
    sslmode: str,
    tls_postgres: PgServer,  # noqa: F811
) -> None:
    conninfo = psycopg.conninfo.conninfo_to_dict(PostgresDriver.from_django(PGTLS).conninfo)
    assert conninfo["sslmode"] == sslmode
    assert conninfo["password"] == tls_postgres.password
    assert conninfo.get("sslrootcert") == (tls_postgres.ca_file if "verify" in sslmode else None)


def test_enqueue_and_run_in_process_over_tls(sslmode: str) -> None:
    result = tasks.add.using(backend=PGTLS).enqueue(2, 3)
    worker = work(PGTLS)
    assert worker.processed == 1
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL, result.errors
    assert result.return_value == 5
    assert sessions() and all(ssl for _, ssl in sessions())


@pytest.mark.parametrize("sslmode", ["verify-full"], indirect=True)
def test_a_worker_process_runs_tasks_over_tls_and_leaks_no_password(
    sslmode: str,
    tls_postgres: PgServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    secret = tls_postgres.password
    env = {**os.environ, ENV: json.dumps(tls_postgres.database(sslmode)),
           "VTASKS_TEST_DATABASES": "default", "VTASKS_LOG_LEVEL": "DEBUG"}  # fmt: skip
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        worker = subprocess.Popen(
            [*CLI, "worker", "--backend", PGTLS], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        rows = ProcessRecord.objects.using(PGTLS)
        wait_for(lambda: rows.filter(pid=worker.pid).exists(), what="the worker to register")
        result = tasks.add.using(backend=PGTLS).enqueue(20, 22)
        wait_for(
            lambda: task_backends[PGTLS].get_result(result.id).is_finished,
            what="the worker process to run the task",
        )
        done = task_backends[PGTLS].get_result(result.id)
        assert done.status == TaskResultStatus.SUCCESSFUL, done.errors
        assert done.return_value == 42 and done.worker_ids == [rows.get(pid=worker.pid).id]
        # The worker driver's pool and LISTEN connections: on the server, and encrypted.
        driver_sessions = [ssl for name, ssl in sessions() if name == "vtasks"]
        assert driver_sessions and all(driver_sessions)
        assert secret not in process_table()
    finally:
        stop_process(worker)
    text = log.read_text(errors="replace")
    assert text, "the worker logged nothing at DEBUG"
    assert secret not in text, text[-2000:]
    for command in (["check", "--backend", PGTLS], ["status", "--backend", PGTLS]):
        shown = subprocess.run(
            [*CLI, *command], capture_output=True, text=True, timeout=60, env=env
        )
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert secret not in shown.stdout + shown.stderr
