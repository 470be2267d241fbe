"""vtasks (this repository): the Valkey backend, on the benchmark's Redis database."""

from __future__ import annotations

from systems.base import *  # noqa: F403

DATABASES = SQLITE_MEMORY  # noqa: F405
INSTALLED_APPS = ["vtasks"]
TASKS = {
    "default": {
        "BACKEND": "vtasks.backends.valkey.ValkeyBackend",
        "QUEUES": [],
        "OPTIONS": {"BROKER_URL": VALKEY_URL},  # noqa: F405
    }
}
