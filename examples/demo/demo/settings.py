"""The demo project: vtasks' database backend on the embedded SQLite default."""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "vtasks-demo-not-secret"
DEBUG = True
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "vtasks", "demo"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DEMO_DB", BASE_DIR / "demo.sqlite3"),
        # One writer at a time, without "database is locked": WAL plus IMMEDIATE transactions.
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL;",
        },
    }
}

TASKS = {
    "default": {
        "BACKEND": "vtasks.backends.database.DatabaseBackend",
        "QUEUES": ["default", "emails"],
        "OPTIONS": {"RESULT_TTL": 7 * 24 * 3600},
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "short"}},
    "formatters": {"short": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "loggers": {
        "vtasks": {"handlers": ["console"], "level": "INFO"},
        # Django logs every task start and finish at INFO; keep the demo's output to failures.
        "django.tasks": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}
