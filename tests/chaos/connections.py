"""Cut the server connections of one process tree (ours), never anybody else's.

The tree's TCP sockets are found through ``/proc``: each process's ``fd`` links name socket
inodes, ``/proc/net/tcp`` maps an inode to its local port, and the servers list their clients by
that port (``pg_stat_activity.client_port``, ``CLIENT LIST addr=``). Other engineers share these
servers, so nothing is restarted and no connection outside the tree is touched.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from tests.chaos.harness import children_of


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children_of(current)
    return found


def local_ports(pids: list[int]) -> set[int]:
    """The local TCP ports of the sockets these processes hold open."""
    inodes: set[str] = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[9] in inodes:
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def kill_postgres(db_alias: str, ports: set[int]) -> int:
    """``pg_terminate_backend`` every backend of the tree's connections; returns how many."""
    import psycopg
    from django.conf import settings

    entry = settings.DATABASES[db_alias]
    with psycopg.connect(
        host=entry["HOST"], port=entry["PORT"], user=entry["USER"], dbname="postgres",
        autocommit=True,
    ) as conn:  # fmt: skip
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND client_port = ANY(%s) AND pid <> pg_backend_pid()",
            (entry["NAME"], sorted(ports)),
        ).fetchall()
    return sum(1 for (ok,) in rows if ok)


def kill_valkey(url: str, ports: set[int]) -> int:
    """``CLIENT KILL ID`` every client connection of the tree; returns how many."""
    from vtasks.drivers.valkey.client import sync_client

    client = sync_client(url)
    killed = 0
    for entry in client.client_list():
        port = int(str(entry["addr"]).rsplit(":", 1)[1])
        if port in ports:
            with contextlib.suppress(Exception):  # it may have gone by itself meanwhile
                killed += int(client.execute_command("CLIENT", "KILL", "ID", entry["id"]))
    client.close()
    return killed
