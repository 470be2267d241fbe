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

A project may hand its own asyncio ``ConnectionPool`` over instead of a URL (the backend's
``CONNECTION_POOL``, or a cache backend's client): ``pool_client`` wraps it for one loop and never
closes it. A worker process never uses such a pool (it may have been made before ``fork()``):
``ConnectionSpec`` copies what the pool's connections are made of, and ``new_async_client`` builds
a private pool from it.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
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

    client = valkey.Valkey.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT)
    pool = client.connection_pool
    pool.connection_class = _c_packing(pool.connection_class)
    return client


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionSpec:
    """What an asyncio pool's connections are made of: the class and its keyword arguments
    (server, database, auth, TLS, timeouts). Plain data, safe to carry across ``fork()``."""

    connection_class: type
    connection_kwargs: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, pool: Any) -> ConnectionSpec:
        return cls(
            connection_class=pool.connection_class, connection_kwargs=dict(pool.connection_kwargs)
        )


def new_async_client(
    url: str | None, cluster: bool = False, spec: ConnectionSpec | None = None
) -> Any:
    """A private asyncio client (the worker's driver owns and closes its own): from ``spec``
    when given (a pool of its own with those connections), else from ``url``."""
    if spec is not None:
        import valkey.asyncio

        kwargs = {"socket_connect_timeout": CONNECT_TIMEOUT, **spec.connection_kwargs}
        pool = valkey.asyncio.ConnectionPool(
            connection_class=_c_packing(spec.connection_class), **kwargs
        )
        return valkey.asyncio.Valkey.from_pool(pool)  # closes its pool with it
    if url is None:
        raise ValueError("new_async_client needs a URL or a ConnectionSpec")
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
    """Pack commands with libvalkey's C encoder, called directly. valkey-py's asyncio client packs
    in Python (which cost a worker about 15% of its time in long ``finish.lua`` calls); its sync
    one calls the same encoder through a serializer object, a call more per command.

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


async def _loop_clients() -> dict[str, Any]:
    """The running loop's clients and lanes, closed when the loop shuts down."""
    loop = asyncio.get_running_loop()
    clients = _async.get(loop)
    if clients is None:
        clients = _async[loop] = {}
        closer = _close_at_shutdown(clients)
        await closer.asend(None)  # registers it with the loop's async-generator hooks
        _closers[loop] = closer
    return clients


async def async_client(url: str, cluster: bool = False) -> Any:
    """The shared asyncio client of ``url`` for the running loop."""
    clients = await _loop_clients()
    url, cluster = parse_url(url, cluster)
    key = f"{'cluster ' if cluster else ''}{url}"
    client = clients.get(key)
    if client is None:
        client = clients[key] = new_async_client(url, cluster)
    return client


async def pool_client(pool: Any) -> Any:
    """A client on a project's asyncio ``pool`` for the running loop. Closing it at the loop's
    end returns its connection and leaves the pool (the project's) open."""
    clients = await _loop_clients()
    key = f"pool {id(pool)}"
    entry = clients.get(key)
    if entry is None or entry.connection_pool is not pool:
        import valkey.asyncio

        entry = clients[key] = valkey.asyncio.Valkey(connection_pool=pool)
    return entry


async def async_lane(url: str, cluster: bool = False) -> Any:
    """The running loop's ``AsyncExchange`` for ``url``'s shared client (``None`` for a cluster,
    whose pipeline routes by slot). Closed with the loop, like the client."""
    return await lane_of(await async_client(url, cluster))


async def lane_of(client: Any) -> Any:
    """The running loop's ``AsyncExchange`` for ``client``'s pool, shared by every client of that
    pool (``None`` for a client without one, such as a cluster's). Closed with the loop."""
    pool = getattr(client, "connection_pool", None)
    if pool is None:
        return None
    from vtasks.drivers.valkey.exchange import AsyncExchange

    clients = await _loop_clients()
    key = f"lane {id(pool)}"
    lane = clients.get(key)
    if lane is None or lane.pool is not pool:
        if lane is not None:  # the id of a pool collected meanwhile: its lane goes too
            await lane.aclose()
        lane = clients[key] = AsyncExchange(client)
    return lane


async def _close_at_shutdown(clients: dict[str, Any]) -> AsyncGenerator[None]:
    try:
        yield
    finally:
        for client in list(clients.values()):
            await client.aclose()  # clients and lanes alike
        clients.clear()


def for_blocking(spec: ConnectionSpec | None, blocking_timeout: float) -> ConnectionSpec | None:
    """``spec`` with a ``socket_timeout`` past ``blocking_timeout`` (else every idle blocking wait
    would end in a timeout error); ``spec`` itself when it has none or a longer one."""
    timeout = None if spec is None else spec.connection_kwargs.get("socket_timeout")
    if spec is None or timeout is None or timeout > blocking_timeout + 1.0:
        return spec
    kwargs = {**spec.connection_kwargs, "socket_timeout": blocking_timeout + 1.0}
    return ConnectionSpec(connection_class=spec.connection_class, connection_kwargs=kwargs)
