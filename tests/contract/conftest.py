"""Fixtures shared by the Valkey contract tests: the real server, and a driver opened on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from django.tasks import task_backends

from tests.conftest import storage_for
from vtasks.drivers.valkey.driver import ValkeyDriver


@pytest.fixture
def valkey() -> Iterator[str]:
    yield from storage_for("valkey")


def new_valkey_driver(**options: Any) -> ValkeyDriver:
    """A driver (not opened) for the ``valkey`` test alias, with its URL and prefix."""
    backend = task_backends["valkey"]
    return ValkeyDriver(backend.url, prefix=backend.prefix, **options)


@pytest.fixture
async def valkey_driver(valkey: str) -> AsyncIterator[ValkeyDriver]:
    driver = new_valkey_driver()
    await driver.open()
    yield driver
    await driver.close()
