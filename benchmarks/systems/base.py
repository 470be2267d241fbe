"""Settings every system shares; each ``systems/<name>/settings.py`` star-imports this module.

The harness passes the database and the worker's knobs through the environment (``BENCH_*``).
"""

from __future__ import annotations

import os

SECRET_KEY = "benchmark-only-not-secret"
DEBUG = False  # DEBUG=True would keep every query in memory.
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS: list[str] = []
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
        "PORT": os.environ.get("BENCH_PG_PORT", "5432"),
        "USER": os.environ.get("BENCH_PG_USER", "postgres"),
        "PASSWORD": os.environ.get("BENCH_PG_PASSWORD", ""),
        "NAME": os.environ.get("BENCH_DB_NAME", "vtasks_bench"),
        "CONN_MAX_AGE": None,  # Persistent connections, for every system.
        "CONN_HEALTH_CHECKS": False,
    }
}

# Django logs two INFO lines per task run (django.tasks). No system gets them in the benchmark.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "loggers": {"django.tasks": {"level": "WARNING"}},
}

CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "10"))

# The Valkey family: the broker (a dedicated database number, flushed between systems).
VALKEY_URL = os.environ.get("BENCH_VALKEY_URL", "redis://127.0.0.1:6379/15")
# Valkey systems keep nothing in SQL; an in-memory SQLite only satisfies Django's transaction hooks.
SQLITE_MEMORY = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
