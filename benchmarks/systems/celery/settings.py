"""Celery with the Redis broker: Django only hosts the benchmark client; the worker is plain Celery."""

from __future__ import annotations

from systems.base import *  # noqa: F403

DATABASES = SQLITE_MEMORY  # noqa: F405
INSTALLED_APPS: list[str] = []
