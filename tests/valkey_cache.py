"""A tiny Django cache backend on valkey-py that lends its clients, for the ``cache_alias`` tests.

It stands for a cache such as django-vcache: ``get_raw_client(async_client=False)`` is its one
sync client, ``get_raw_client(async_client=True)`` its asyncio client for the running loop (asyncio
connections belong to one loop). Values are JSON, enough for ``get``/``set``/``delete``.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from typing import Any

import valkey
import valkey.asyncio
from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache


class RawClientCache(BaseCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(params)
        self.url = server
        self._sync: valkey.Valkey | None = None
        self._by_loop: weakref.WeakKeyDictionary[Any, valkey.asyncio.Valkey] = (
            weakref.WeakKeyDictionary()
        )
        self._loopless: valkey.asyncio.Valkey | None = None

    def get_raw_client(self, async_client: bool = False) -> Any:
        """The sync client, or the asyncio client of the running loop (outside a loop: one that
        has not connected, enough to read its connection settings)."""
        if not async_client:
            if self._sync is None:
                self._sync = valkey.Valkey.from_url(self.url)
            return self._sync
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            if self._loopless is None:
                self._loopless = valkey.asyncio.Valkey.from_url(self.url)
            return self._loopless
        client = self._by_loop.get(loop)
        if client is None:
            client = self._by_loop[loop] = valkey.asyncio.Valkey.from_url(self.url)
        return client

    async def aclose_raw_client(self) -> None:
        """Close the running loop's asyncio client (the tests call it before their loop ends)."""
        client = self._by_loop.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()

    def get(self, key: str, default: Any = None, version: int | None = None) -> Any:
        raw = self.get_raw_client().get(self.make_and_validate_key(key, version=version))
        return default if raw is None else json.loads(raw)

    def set(
        self, key: str, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        seconds = self.default_timeout if timeout is DEFAULT_TIMEOUT else timeout
        self.get_raw_client().set(
            self.make_and_validate_key(key, version=version),
            json.dumps(value),
            ex=None if seconds is None else max(1, int(seconds)),
        )

    def delete(self, key: str, version: int | None = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return bool(self.get_raw_client().delete(key))

    def close(self, **kwargs: Any) -> None:
        """Django calls this at the end of each request; the clients are kept, as a pool is."""
