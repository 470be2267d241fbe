"""django-vtasks (PyPI): its database backend and ``manage.py runworker``."""

from __future__ import annotations

from systems.base import *  # noqa: F403

INSTALLED_APPS = ["django_vtasks", "django_vtasks.db"]
TASKS = {"default": {"BACKEND": "django_vtasks.backends.db.DatabaseTaskBackend"}}
VTASKS_QUEUES = ["default"]
VTASKS_CONCURRENCY = CONCURRENCY  # noqa: F405
