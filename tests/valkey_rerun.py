"""Running the Valkey tests again on another server (the local cluster, the embedded valkey-server).

A module that re-runs them imports ``kind`` and ``alias`` from here (they replace the conftest
fixtures: only the ``valkey`` alias, the Valkey driver), points the alias at its server for the
module with ``valkey_alias_at``, and rebinds contract classes with ``unparametrised``.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.conf import settings
from django.test import override_settings

from tests import storage
from tests.conftest import storage_for


@contextmanager
def valkey_alias_at(url: str, tag: str) -> Iterator[None]:
    """The ``valkey`` TASKS alias on ``url`` (with keys of its own) while the block runs."""
    entry = {
        "BACKEND": "vtasks.backends.valkey.ValkeyBackend",
        "QUEUES": [],
        "OPTIONS": {"BROKER_URL": url, "PREFIX": f"vt-{tag}-{secrets.token_hex(4)}"},
    }
    with override_settings(TASKS={**settings.TASKS, "valkey": entry}):
        yield
        storage.clear("valkey")


def unparametrised(cls: type, suffix: str) -> type:
    """A contract test class again, without its parametrisation over every driver: here the
    ``kind`` and ``alias`` fixtures give the Valkey driver on this module's server."""
    skip = ("pytestmark", "__dict__", "__weakref__")
    body = {k: v for k, v in vars(cls).items() if k not in skip}
    return type(f"{cls.__name__}{suffix}", (), body)


@pytest.fixture
def kind() -> str:
    """The contract suite's driver kind (its ``make_driver`` reads it)."""
    return "valkey"


@pytest.fixture
def alias() -> Iterator[str]:
    """Replaces the conftest fixture: only the ``valkey`` alias, on this module's server."""
    yield from storage_for("valkey")
