"""``tests.settings`` with the ``valkey`` alias on the project's own connections, for the worker
processes ``tests/e2e/test_valkey_sources.py`` starts: ``VTASKS_TEST_VALKEY_SOURCE=pool`` adds a
shared asyncio pool (``CONNECTION_POOL``, made here at import, before any fork), ``cache`` swaps
``BROKER_URL`` for a cache backend's clients (``cache_alias``)."""

import os

import valkey.asyncio

from tests.settings import *  # noqa: F403
from tests.settings import TASKS

_url = os.environ["VTASKS_TEST_VALKEY_URL"]
_options = TASKS["valkey"]["OPTIONS"]
if os.environ.get("VTASKS_TEST_VALKEY_SOURCE") == "pool":
    _options["CONNECTION_POOL"] = valkey.asyncio.ConnectionPool.from_url(
        _url, client_name="vtasks-shared-pool"
    )
elif os.environ.get("VTASKS_TEST_VALKEY_SOURCE") == "cache":
    CACHES = {"default": {"BACKEND": "tests.valkey_cache.RawClientCache", "LOCATION": _url}}
    del _options["BROKER_URL"]
    _options["cache_alias"] = "default"
