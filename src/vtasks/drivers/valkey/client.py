"""Client pools for the backend, module-level and built lazily on first use.

Django builds a backend instance per thread and per async context, so pools cannot live on the
instance: one sync client (a thread-safe pool that resets itself after ``fork()``) per URL, and one
asyncio client per URL and event loop (asyncio connections belong to the loop that opened them).
An asyncio client is closed when its loop shuts down: a tiny async generator registered with the
loop closes it from ``shutdown_asyncgens()``, which ``asyncio.run`` and uvloop call on the way out,
so no socket is left for the garbage collector to complain about.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncGenerator
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


def sync_client(url: str) -> Any:
    client = _sync.get(url)
    if client is None:
        import valkey

        with _sync_lock:
            client = _sync.get(url)
            if client is None:
                client = _sync[url] = valkey.Valkey.from_url(
                    url, socket_connect_timeout=CONNECT_TIMEOUT
                )
    return client


def new_async_client(url: str) -> Any:
    """A private asyncio client (the worker's driver owns and closes its own)."""
    import valkey.asyncio

    return valkey.asyncio.Valkey.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT)


async def async_client(url: str) -> Any:
    """The shared asyncio client of ``url`` for the running loop."""
    loop = asyncio.get_running_loop()
    clients = _async.get(loop)
    if clients is None:
        clients = _async[loop] = {}
        closer = _close_at_shutdown(clients)
        await closer.asend(None)  # registers it with the loop's async-generator hooks
        _closers[loop] = closer
    client = clients.get(url)
    if client is None:
        client = clients[url] = new_async_client(url)
    return client


async def _close_at_shutdown(clients: dict[str, Any]) -> AsyncGenerator[None]:
    try:
        yield
    finally:
        for client in list(clients.values()):
            await client.aclose()
        clients.clear()
