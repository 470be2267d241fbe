"""A throwaway PostgreSQL server for tests that wants TLS and a password, on a free loopback port.

``tls_postgres`` runs ``initdb`` and ``postgres`` from Debian's ``/usr/lib/postgresql/*/bin`` (or
``pg_config --bindir``) in a temporary directory, as the ``postgres`` user when the tests run as
root (``initdb`` refuses root). Its ``pg_hba.conf`` has a single ``hostssl ... scram-sha-256`` line:
a connection without TLS or without the password is refused. The certificate is signed by a
throwaway CA made with the ``openssl`` command (``tests.valkey_servers.make_certificates``). The
shared server on port 5432 is never touched.

Missing binaries, or a server that will not start, skip the tests locally and fail them when
``CI=true``.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.valkey_servers import make_certificates

START_TIMEOUT = 20.0
USER = "vtasks_tls"
DBNAME = "vtasks_tls"
HBA = "hostssl all all 127.0.0.1/32 scram-sha-256\n"


@dataclass(frozen=True, slots=True, kw_only=True)
class PgServer:
    """One running server: where it listens, the role's password and the CA that signed it."""

    port: int
    password: str
    ca_file: str
    root: Path

    def conninfo(self, **params: str) -> str:
        """A libpq conninfo for the role and database; ``params`` add to or replace its fields."""
        fields = {"host": "127.0.0.1", "port": str(self.port), "user": USER, "dbname": DBNAME,
                  "password": self.password, "connect_timeout": "5", **params}  # fmt: skip
        return " ".join(f"{key}='{value}'" for key, value in fields.items())

    def database(self, sslmode: str = "require") -> dict[str, Any]:
        """A Django ``DATABASES`` entry; ``verify-ca``/``verify-full`` also name the test CA."""
        options: dict[str, str] = {"sslmode": sslmode}
        if sslmode.startswith("verify"):
            options["sslrootcert"] = self.ca_file
        return {
            "ENGINE": "django.db.backends.postgresql", "NAME": DBNAME, "USER": USER,
            "PASSWORD": self.password, "HOST": "127.0.0.1", "PORT": str(self.port),
            "OPTIONS": options,
        }  # fmt: skip


def bindir() -> Path:
    """The directory holding ``initdb`` and ``postgres`` (RuntimeError when there is none)."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
    if pg_config := shutil.which("pg_config"):
        done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(done.stdout.strip())
    for path in map(Path, filter(None, candidates)):
        if (path / "initdb").is_file() and (path / "postgres").is_file():
            return path
    raise RuntimeError("no PostgreSQL server binaries (initdb, postgres) in /usr/lib/postgresql")


def _version(path: str) -> int:
    part = Path(path).parent.name
    return int(part) if part.isdigit() else 0


def _as_server_user(root: Path) -> list[str]:
    """The command prefix that runs a server binary as ``postgres`` when we are root."""
    if os.geteuid() != 0:
        return []
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        raise RuntimeError("running as root, but there is no postgres user for initdb") from None
    for path in (root, *root.rglob("*")):
        os.chown(path, account.pw_uid, account.pw_gid)
    # setpriv execs (no fork, unlike runuser), so the Popen handle is the postmaster itself.
    return ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}",
            "--init-groups", "--"]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(root: Path) -> tuple[PgServer, subprocess.Popen[bytes]]:
    """initdb, certificates, pg_hba and ``postgres`` under ``root``; returns once it answers."""
    binaries = bindir()
    certs = root / "certs"
    certs.mkdir()
    ca, cert, key = make_certificates(certs)
    key.chmod(0o600)  # postgres refuses a private key others can read
    password = secrets.token_urlsafe(12)
    (root / "pwfile").write_text(password + "\n")
    prefix = _as_server_user(root)
    data = root / "data"
    initdb = [*prefix, str(binaries / "initdb"), "-D", str(data), "-U", USER, "-E", "UTF8",
              "--locale=C", "--pwfile", str(root / "pwfile"), "-A", "scram-sha-256",
              "--no-sync", "--no-instructions"]  # fmt: skip
    done = subprocess.run(initdb, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode:
        raise RuntimeError(f"initdb failed: {done.stderr[-500:]}")
    (data / "pg_hba.conf").write_text(HBA)
    port = _free_port()
    server = PgServer(port=port, password=password, ca_file=str(ca), root=root)
    command = [*prefix, str(binaries / "postgres"), "-D", str(data), "-p", str(port),
               "-k", str(root), "-c", "listen_addresses=127.0.0.1", "-c", "ssl=on",
               "-c", f"ssl_cert_file={cert}", "-c", f"ssl_key_file={key}", "-c", "fsync=off",
               "-c", "max_connections=40", "-c", "shared_buffers=16MB"]  # fmt: skip
    with open(root / "server.log", "ab") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_ready(server, proc)
        _create_database(server)
    except BaseException:
        stop_server(proc)
        raise
    return server, proc


def _wait_until_ready(server: PgServer, proc: subprocess.Popen[bytes]) -> None:
    import psycopg

    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = (server.root / "server.log").read_text(errors="replace")
            raise RuntimeError(f"postgres exited with {proc.returncode}: {log[-500:]}")
        try:
            psycopg.connect(server.conninfo(dbname="postgres", sslmode="require")).close()
            return
        except psycopg.OperationalError:
            time.sleep(0.1)
    raise RuntimeError(f"postgres did not answer on port {server.port} in {START_TIMEOUT}s")


def _create_database(server: PgServer) -> None:
    import psycopg

    info = server.conninfo(dbname="postgres", sslmode="require")
    with psycopg.connect(info, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{DBNAME}"')


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGINT: roll back sessions, then exit); SIGKILL if that hangs."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def tls_postgres() -> Iterator[PgServer]:
    """A PostgreSQL server that accepts only TLS with a password, for the session."""
    root = Path(tempfile.mkdtemp(prefix="vtasks-pgtls-"))
    try:
        try:
            server, proc = start_server(root)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI: the TLS PostgreSQL server did not start: {exc}")
            pytest.skip(f"no TLS PostgreSQL server: {exc}")
        try:
            yield server
        finally:
            stop_server(proc)
    finally:
        shutil.rmtree(root, ignore_errors=True)
