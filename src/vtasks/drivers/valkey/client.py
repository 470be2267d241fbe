"""Client pools for the backend, module-level and built lazily on first use.

Django builds a backend instance per thread and per async context, so pools cannot live on the
instance: one sync client (a thread-safe pool that resets itself after ``fork()``) per URL, and one
asyncio client per URL and event loop (asyncio connections belong to the loop that opened them).
An asyncio client is closed when its loop shuts down: a tiny async generator registered with the
loop closes it from ``shutdown_asyncgens()``, which ``asyncio.run`` and uvloop call on the way out,
so no socket is left for the garbage collector to complain about.

Cluster mode (``cluster=True``, or a ``valkey+cluster://``/``redis+cluster://`` URL) builds
valkey-py's cluster clients instead: they route each command, script call and pipeline entry by
the slot of its keys (a non-transactional cluster pipeline splits itself per node).
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncGenerator, Callable
from typing import Any

_sync: dict[str, Any] = {}
_sync_lock = threading.Lock()
_async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Any]] = (
    weakref.WeakKeyDictionary()
)
_closers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncGenerator[None]] = (
    weakref.WeakKeyDictionary()
)

CONNECT_TIMEOUT = 5.0
#: URL schemes that ask for cluster mode, and the plain scheme valkey-py is given instead.
CLUSTER_SCHEMES = {
    "valkey+cluster": "valkey", "valkeys+cluster": "valkeys",
    "redis+cluster": "redis", "rediss+cluster": "rediss",
}  # fmt: skip


def parse_url(url: str, cluster: bool = False) -> tuple[str, bool]:
    """``url`` as valkey-py takes it, and whether it names a cluster (scheme or ``cluster``)."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.lower() in CLUSTER_SCHEMES:
        return f"{CLUSTER_SCHEMES[scheme.lower()]}://{rest}", True
    return url, cluster


def sync_client(url: str, cluster: bool = False) -> Any:
    """The shared sync client of ``url`` (a ``+cluster`` scheme implies ``cluster``)."""
    url, cluster = parse_url(url, cluster)
    key = f"{'cluster ' if cluster else ''}{url}"
    client = _sync.get(key)
    if client is None:
        with _sync_lock:
            client = _sync.get(key)
            if client is None:
                client = _sync[key] = _new_sync_client(url, cluster)
    return client


def _new_sync_client(url: str, cluster: bool) -> Any:
    if cluster:
        from valkey.cluster import ValkeyCluster

        return ValkeyCluster.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT)
    import valkey

    return valkey.Valkey.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT)


def new_async_client(url: str, cluster: bool = False) -> Any:
    """A private asyncio client (the worker's driver owns and closes its own)."""
    url, cluster = parse_url(url, cluster)
    if cluster:
        from valkey.asyncio.cluster import ValkeyCluster

        # No read timeout, as on a single server: a worker's BLPOP may block longer than the
        # cluster client's default of 5 s.
        return ValkeyCluster.from_url(
            url, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=None
        )
    import valkey.asyncio

    client = valkey.asyncio.Valkey.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT)
    pool = client.connection_pool
    pool.connection_class = _c_packing(pool.connection_class)
    return client


class _CPacking:
    """Pack commands with libvalkey's C encoder (valkey-py's sync client does; its asyncio one
    packs in Python, which cost a worker about 15% of its time in long ``finish.lua`` calls).

    Mixed into the pool's connection class; without libvalkey the class is left alone. The
    cluster client takes no custom connection class, so it keeps valkey-py's packer.
    """

    def pack_command(self, *args: Any) -> list[bytes]:
        first = args[0]
        if isinstance(first, str):
            args = (*first.encode().split(), *args[1:])  # "SCRIPT LOAD" is two words on the wire
        elif b" " in first:
            args = (*first.split(), *args[1:])
        try:
            return [_pack(args)]  # type: ignore[misc]  # only mixed in with libvalkey
        except TypeError as exc:
            from valkey.exceptions import DataError

            raise DataError(str(exc)) from exc

    def pack_commands(self, commands: Any) -> list[bytes]:
        return [b"".join([self.pack_command(*command)[0] for command in commands])]


def _c_packing(base: type) -> type:
    if _pack is None or issubclass(base, _CPacking):
        return base
    return type(f"CPacking{base.__name__}", (_CPacking, base), {})


_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from libvalkey import pack_command as _pack
except ImportError:  # pragma: no cover - the [valkey] extra installs libvalkey
    _pack = None


async def async_client(url: str, cluster: bool = False) -> Any:
    """The shared asyncio client of ``url`` for the running loop."""
    loop = asyncio.get_running_loop()
    clients = _async.get(loop)
    if clients is None:
        clients = _async[loop] = {}
        closer = _close_at_shutdown(clients)
        await closer.asend(None)  # registers it with the loop's async-generator hooks
        _closers[loop] = closer
    url, cluster = parse_url(url, cluster)
    key = f"{'cluster ' if cluster else ''}{url}"
    client = clients.get(key)
    if client is None:
        client = clients[key] = new_async_client(url, cluster)
    return client


async def _close_at_shutdown(clients: dict[str, Any]) -> AsyncGenerator[None]:
    try:
        yield
    finally:
        for client in list(clients.values()):
            await client.aclose()
        clients.clear()
