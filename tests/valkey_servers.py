"""Throwaway Valkey/Redis servers for tests: a local 3-master cluster on free loopback ports.

Uses ``valkey-server``/``valkey-cli`` when on the PATH, else ``redis-server``/``redis-cli`` (both
speak the cluster protocol vtasks needs). Each node runs in a temporary directory with
persistence off; the cluster is formed with ``--cluster create`` and used once every node reports
``cluster_state:ok``. A missing binary or a cluster that will not form skips the tests locally
and fails them when ``CI=true``.
"""

from __future__ import annotations

import os
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
