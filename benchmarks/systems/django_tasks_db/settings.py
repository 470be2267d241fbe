"""django-tasks-db (PyPI): the database backend of the django-tasks project, worker ``db_worker``."""

from __future__ import annotations

from systems.base import *  # noqa: F403

INSTALLED_APPS = ["django_tasks_db"]
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}}
