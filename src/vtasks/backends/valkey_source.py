"""Where the Valkey backend's connections come from: ``BROKER_URL``, ``CONNECTION_POOL`` or
``cache_alias`` (its ``OPTIONS``), for the sync side, the async side and the worker.

* ``BROKER_URL``: a shared sync client per URL, an asyncio client per URL and event loop
  (``drivers/valkey/client.py``); the worker connects to the URL.
* ``CONNECTION_POOL`` (a ``valkey.asyncio.ConnectionPool``) plus ``BROKER_URL``: the async side
  runs on the project's pool (never closed by vtasks); the sync side needs ``BROKER_URL``, as an
  asyncio pool cannot serve sync code; the worker makes the pool's kind of connections.
* ``cache_alias``: the sync and async sides borrow the cache backend's clients
  (``get_raw_client(async_client=...)``); the worker makes the async client's kind of connections.

A pool object never reaches a worker: it may have been made (and connected) before ``fork()``,
and asyncio connections belong to the loop that opened them. The worker's driver gets a
``ConnectionSpec`` instead (the pool's connection class and keyword arguments: same server,
database, credentials and TLS) and builds a pool of its own after fork. The fast paths stay:
``exchange``/``AsyncExchange`` make their own connections from a pool's ``connection_class`` and
``connection_kwargs``, whichever pool that is; a borrowed client without a ``connection_pool``
(a cluster client) goes through its own pipelines instead.
"""

from __future__ import annotations

from typing import Any

from vtasks.core.errors import ConfigError
from vtasks.drivers.valkey import client as _client

DEFAULT_URL = "valkey://127.0.0.1:6379/0"


class Source:
    """The connections of one backend alias, resolved from its ``OPTIONS`` (no I/O here)."""

    def __init__(self, alias: str, options: dict[str, Any]) -> None:
        self.alias = alias
        self.pool: Any = options.get("CONNECTION_POOL")
        self.cache_alias: str | None = options.get("cache_alias")
        url = options.get("BROKER_URL")
        if self.cache_alias is not None and (url is not None or self.pool is not None):
            raise ConfigError(
                f"TASKS[{alias!r}]['OPTIONS']: cache_alias borrows the cache's clients for every "
                "side; drop BROKER_URL and CONNECTION_POOL, or drop cache_alias"
            )
        if self.pool is not None:
            _check_pool(alias, self.pool, url)
        self.url: str | None = url if url is not None or self.borrowed else DEFAULT_URL
        cluster = bool(options.get("CLUSTER", False))
        self.cluster = _client.parse_url(self.url, cluster)[1] if self.url else cluster
        if self.cluster and self.borrowed:
            raise ConfigError(
                f"TASKS[{alias!r}]['OPTIONS']: CLUSTER works with BROKER_URL only (a cluster "
                "client routes by slot and shares no connection pool)"
            )
        #: The module-level sync client of ``url``, once looked up (the look-up parses the URL).
        self._sync_client: Any = None

    @property
    def borrowed(self) -> bool:
        """Whether the async side uses the project's connections (a pool or a cache's)."""
        return self.pool is not None or self.cache_alias is not None

    def sync_client(self) -> Any:
        if self.cache_alias is not None:
            return self._cache().get_raw_client(async_client=False)
        if self._sync_client is None:
            assert self.url is not None
            self._sync_client = _client.sync_client(self.url, self.cluster)
        return self._sync_client

    async def async_client(self) -> Any:
        if self.pool is not None:
            return await _client.pool_client(self.pool)
        if self.cache_alias is not None:
            return self._cache().get_raw_client(async_client=True)
        assert self.url is not None
        return await _client.async_client(self.url, self.cluster)

    async def async_client_and_lane(self) -> tuple[Any, Any]:
        """The async client and the ``AsyncExchange`` for its pool (``None``: use pipelines)."""
        client = await self.async_client()
        return client, await _client.lane_of(client)

    def worker_connection(self) -> _client.ConnectionSpec | None:
        """What the worker's private pool makes (``None``: the worker uses ``url``)."""
        if self.pool is not None:
            return _client.ConnectionSpec.of(self.pool)
        if self.cache_alias is None:
            return None
        pool = getattr(self._cache().get_raw_client(async_client=True), "connection_pool", None)
        if pool is None:
            raise ConfigError(
                f"TASKS[{self.alias!r}]['OPTIONS']['cache_alias']: the cache {self.cache_alias!r} "
                "hands out an async client without a connection_pool, so a worker cannot copy "
                "its connection settings; use BROKER_URL for this backend"
            )
        return _client.ConnectionSpec.of(pool)

    def _cache(self) -> Any:
        from django.core.cache import caches

        cache = caches[self.cache_alias]
        if not callable(getattr(cache, "get_raw_client", None)):
            raise ConfigError(
                f"TASKS[{self.alias!r}]['OPTIONS']['cache_alias']: the cache {self.cache_alias!r} "
                f"({type(cache).__name__}) has no get_raw_client(async_client: bool); use a cache "
                "backend that lends its valkey-py clients, or BROKER_URL"
            )
        return cache


def _check_pool(alias: str, pool: Any, url: str | None) -> None:
    import valkey.asyncio

    where = f"TASKS[{alias!r}]['OPTIONS']"
    if not isinstance(pool, valkey.asyncio.ConnectionPool):
        raise ConfigError(
            f"{where}['CONNECTION_POOL']: expected a valkey.asyncio.ConnectionPool, got "
            f"{type(pool).__module__}.{type(pool).__qualname__}"
        )
    if url is None:
        raise ConfigError(
            f"{where}: CONNECTION_POOL serves the async side only (aenqueue, aget_result); set "
            "BROKER_URL too, to the same server, for the sync side (enqueue, get_result, the "
            "queue controls and the scheduler)"
        )
