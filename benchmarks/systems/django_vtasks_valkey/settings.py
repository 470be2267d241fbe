"""django-vtasks (PyPI): its Valkey backend (``django-vcache``'s Rust driver) and ``runworker``."""

from __future__ import annotations

from systems.base import *  # noqa: F403

DATABASES = SQLITE_MEMORY  # noqa: F405
INSTALLED_APPS = ["django_vtasks"]
TASKS = {
    "default": {
        "BACKEND": "django_vtasks.backends.valkey.ValkeyTaskBackend",
        "OPTIONS": {"BROKER_URL": VALKEY_URL},  # noqa: F405
    }
}
VTASKS_QUEUES = ["default"]
VTASKS_CONCURRENCY = CONCURRENCY  # noqa: F405
VTASKS_RUN_SCHEDULER = False
