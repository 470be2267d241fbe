"""Where the Valkey backend connects: ``CONNECTION_POOL``, ``cache_alias``, and TLS with a password.

Each test adds a TASKS alias of its own (keys under a fresh prefix, deleted afterwards), enqueues
through it, runs a worker (``tests.helpers.work``: the worker's driver builds its own connections,
as it does after fork) and reads the result back.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import valkey
import valkey.asyncio
from django.conf import settings
from django.core.cache import caches
from django.tasks import TaskResultStatus, task_backends
from django.test import override_settings

from tests import tasks
from tests.conftest import valkey_available
from tests.helpers import work
from tests.valkey_servers import Server, tls_valkey  # noqa: F401
from vtasks.core.errors import ConfigError
from vtasks.drivers.valkey import client as _client
from vtasks.drivers.valkey import exchange as _exchange
from vtasks.drivers.valkey.keys import own_key_pattern

ALIAS = "vkconn"


def _url() -> str:
    if not valkey_available():
        pytest.skip("Valkey/Redis is not available")
    return settings.TASKS["valkey"]["OPTIONS"]["BROKER_URL"]


@pytest.fixture
def use() -> Iterator[Any]:
    """``use(**OPTIONS)``: the ``vkconn`` alias with those OPTIONS (and a fresh PREFIX) for the
    test; its keys are deleted at the end through ``cleanup_url``."""
    active: list[Any] = []
    prefixes: list[tuple[str, str]] = []

    def apply(cleanup_url: str | None = None, **options: Any) -> Any:
        prefix = f"vt-conn-{secrets.token_hex(4)}"
        entry = {
            "BACKEND": "vtasks.backends.valkey.ValkeyBackend",
            "QUEUES": [],
            "OPTIONS": {"PREFIX": prefix, **options},
        }
        override = override_settings(TASKS={**settings.TASKS, ALIAS: entry})
        override.enable()
        active.append(override)
        prefixes.append((cleanup_url or _url(), prefix))
        return task_backends[ALIAS]

    yield apply
    for override in reversed(active):
        override.disable()
    for url, prefix in prefixes:
        client = valkey.Valkey.from_url(url)
        keys = list(client.scan_iter(match=own_key_pattern(prefix), count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def _enqueue_run_and_read(backend: Any, loop_end: Any = None) -> None:
    """Sync and async enqueue, a worker run, and both result reads. ``loop_end`` (a coroutine
    function) runs before each event loop ends: the project's asyncio connections belong to it."""

    def in_a_loop(coroutine: Any) -> Any:
        async def run() -> Any:
            try:
                return await coroutine
            finally:
                if loop_end is not None:
                    await loop_end()

        return asyncio.run(run())

    async def async_side() -> Any:
        queued = await tasks.async_add.using(backend=ALIAS).aenqueue(3, 4)
        assert (await backend.aget_result(queued.id)).status == TaskResultStatus.READY
        return queued

    result = tasks.add.using(backend=ALIAS).enqueue(1, 2)
    queued = in_a_loop(async_side())
    assert work(ALIAS).processed == 2
    assert backend.get_result(result.id).return_value == 3
    assert in_a_loop(backend.aget_result(queued.id)).return_value == 7


# -- CONNECTION_POOL -----------------------------------------------------------------------------
def test_a_shared_pool_serves_the_async_side_and_the_url_the_sync_side(use: Any) -> None:
    url = _url()
    pool = valkey.asyncio.ConnectionPool.from_url(url, client_name="project-pool")
    backend = use(CONNECTION_POOL=pool, BROKER_URL=url)

    async def check() -> None:
        client, lane = await backend.source.async_client_and_lane()
        assert client.connection_pool is pool and lane.pool is pool  # the fast path, same pool
        await client.ping()
        await pool.disconnect()  # the project closes its own pool; vtasks never does

    asyncio.run(check())
    assert backend.source.sync_client() is _client.sync_client(url)
    _enqueue_run_and_read(backend, loop_end=pool.disconnect)


def test_the_worker_builds_its_own_pool_from_the_shared_pools_settings(use: Any) -> None:
    url = _url()
    pool = valkey.asyncio.ConnectionPool.from_url(url, client_name="project", socket_timeout=0.5)
    backend = use(CONNECTION_POOL=pool, BROKER_URL=url, BLOCKING_TIMEOUT=1.0)
    driver = backend.create_driver()
    spec = driver.connection
    assert spec.connection_class is pool.connection_class
    assert spec.connection_kwargs["client_name"] == "project"
    assert spec.connection_kwargs["socket_timeout"] == 2.0  # raised past a blocking wait

    async def run() -> str:
        await driver.open()
        try:
            own = driver._client.connection_pool
            assert own is not pool and own.connection_kwargs["client_name"] == "project"
            return await driver._client.client_getname()
        finally:
            await driver.close()

    assert asyncio.run(run()) == "project"


def test_a_shared_pool_without_a_broker_url_says_what_the_url_is_for(use: Any) -> None:
    pool = valkey.asyncio.ConnectionPool.from_url(_url())
    with pytest.raises(ConfigError, match="set BROKER_URL too.*sync side"):
        use(CONNECTION_POOL=pool)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"CONNECTION_POOL": "redis://x", "BROKER_URL": "redis://x"}, "expected a valkey.asyncio"),
        ({"cache_alias": "default", "BROKER_URL": "redis://x"}, "drop BROKER_URL"),
        ({"CLUSTER": True, "cache_alias": "default"}, "CLUSTER works with BROKER_URL only"),
    ],
)
def test_connection_options_that_do_not_fit_together(
    use: Any, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        use(**options)


# -- cache_alias ----------------------------------------------------------------------------------
@pytest.fixture
def raw_cache() -> Iterator[str]:
    """A ``CACHES`` alias whose backend (``tests.valkey_cache``) lends its valkey-py clients."""
    entry = {"BACKEND": "tests.valkey_cache.RawClientCache", "LOCATION": _url()}
    with override_settings(CACHES={**settings.CACHES, "raw": entry}):
        yield "raw"
        caches["raw"].get_raw_client().close()


# The cache fixture comes first: overrides must be undone in the reverse order they were made, or
# a leftover one outlives the test (settings.SETTINGS_MODULE reads None under it, for one).
def test_a_cache_alias_lends_its_clients_to_every_side(raw_cache: str, use: Any) -> None:
    backend = use(cache_alias=raw_cache)
    cache = caches[raw_cache]
    assert backend.url is None
    assert backend.source.sync_client() is cache.get_raw_client(async_client=False)
    cache.set("still-a-cache", {"n": 1})
    assert cache.get("still-a-cache") == {"n": 1} and cache.delete("still-a-cache")

    async def borrowed() -> None:
        client, lane = await backend.source.async_client_and_lane()
        assert client is cache.get_raw_client(async_client=True)
        assert lane.pool is client.connection_pool
        await cache.aclose_raw_client()

    asyncio.run(borrowed())
    spec = backend.create_driver().connection
    assert (
        spec.connection_kwargs["port"]
        == cache.get_raw_client().connection_pool.connection_kwargs["port"]
    )

    _enqueue_run_and_read(backend, loop_end=cache.aclose_raw_client)
    # The sync enqueue took the fast path on the borrowed pool's kind of connection.
    held = _exchange._held.connections
    assert (
        held[id(cache.get_raw_client().connection_pool)][0]
        is cache.get_raw_client().connection_pool
    )


@pytest.fixture
def plain_cache() -> Iterator[str]:
    locmem = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    with override_settings(CACHES={**settings.CACHES, "plain": locmem}):
        yield "plain"


def test_a_cache_without_raw_clients_is_refused_by_name(plain_cache: str, use: Any) -> None:
    use(cache_alias=plain_cache)
    with pytest.raises(ConfigError, match="'plain'.*get_raw_client"):
        tasks.add.using(backend=ALIAS).enqueue(1, 2)


# -- TLS and a password ---------------------------------------------------------------------------
def test_tls_with_a_password_enqueue_work_and_read_back(
    use: Any,
    tls_valkey: Server,  # noqa: F811
) -> None:
    url = tls_valkey.tls_url()
    backend = use(cleanup_url=url, BROKER_URL=url)
    pool = backend.source.sync_client().connection_pool
    assert issubclass(pool.connection_class, valkey.connection.SSLConnection)  # plain is closed
    _enqueue_run_and_read(backend)


def test_tls_with_a_wrong_password_fails_clearly(
    use: Any,
    tls_valkey: Server,  # noqa: F811
) -> None:
    use(cleanup_url=tls_valkey.tls_url(), BROKER_URL=tls_valkey.tls_url(password="wrong"))
    with pytest.raises(valkey.AuthenticationError, match="invalid username-password pair"):
        tasks.add.using(backend=ALIAS).enqueue(1, 2)
    driver = task_backends[ALIAS].create_driver()  # the worker refuses to start, as clearly
    with pytest.raises(valkey.AuthenticationError, match="invalid username-password pair"):
        asyncio.run(driver.open())
