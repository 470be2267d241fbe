"""Django settings for the test suite: one SQLite, one PostgreSQL and one MariaDB database at once.

Each database has its own ``TASKS`` alias, so a test parametrised over aliases runs the same code on
all three; the ``valkey`` alias (when ``VTASKS_TEST_VALKEY_URL`` is set) stores tasks in Valkey. Subprocess workers import this module too, so paths come from the environment.
"""

import os

import pymysql

# Django wants mysqlclient >= 2.2.1; PyMySQL speaks the same DB-API and needs no C client library.
pymysql.version_info = (2, 2, 1, "final", 0)
pymysql.install_as_MySQLdb()

SECRET_KEY = "vtasks-tests"
# The test project served by a real server (tests/e2e/test_gunicorn.py) on the loopback.
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "vtasks",
    "tests",
]
# The admin (tests/admin): its URLs, and what django.contrib.admin needs around it.
ROOT_URLCONF = "tests.urls"
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

_sqlite_path = os.environ.setdefault("VTASKS_TEST_SQLITE", "/tmp/vtasks-test.sqlite3")
_db_name = os.environ.get("VTASKS_TEST_DB_NAME", "vtasks_test")

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": _sqlite_path,
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL;",
        },
        "TEST": {"NAME": _sqlite_path},
    },
    "pg": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _db_name,
        "HOST": os.environ.get("VTASKS_TEST_PG_HOST", "127.0.0.1"),
        "PORT": os.environ.get("VTASKS_TEST_PG_PORT", "5432"),
        "USER": os.environ.get("VTASKS_TEST_PG_USER", "postgres"),
        "CONN_MAX_AGE": None,
    },
    "mysql": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": _db_name,
        "HOST": os.environ.get("VTASKS_TEST_MYSQL_HOST", "127.0.0.1"),
        "PORT": os.environ.get("VTASKS_TEST_MYSQL_PORT", "3306"),
        "USER": os.environ.get("VTASKS_TEST_MYSQL_USER", "root"),
        "OPTIONS": {"charset": "utf8mb4", "isolation_level": "read committed"},
    },
}

_enabled = os.environ.get("VTASKS_TEST_DATABASES", "default,pg,mysql").split(",")
DATABASES = {alias: DATABASES[alias] for alias in _enabled}

TASKS = {
    alias: {
        "BACKEND": "vtasks.backends.database.DatabaseBackend",
        "QUEUES": [],
        "OPTIONS": {"database_alias": alias},
    }
    for alias in DATABASES
}
if os.environ.get("VTASKS_TEST_VALKEY_URL"):
    TASKS["valkey"] = {
        "BACKEND": "vtasks.backends.valkey.ValkeyBackend",
        "QUEUES": [],
        "OPTIONS": {
            "BROKER_URL": os.environ["VTASKS_TEST_VALKEY_URL"],
            "PREFIX": os.environ.get("VTASKS_TEST_VALKEY_PREFIX", "vt-test"),
        },
    }
if "default" not in TASKS:
    TASKS["default"] = {"BACKEND": "django.tasks.backends.dummy.DummyBackend", "QUEUES": []}

# A second PostgreSQL database that holds only vtasks' tables (tests/integration/
# test_queue_database.py): the app's models stay on "pg". No TASKS alias of its own here (the
# admin lists every alias); the test adds one with OPTIONS["database_alias"] = QUEUE_DATABASE.
QUEUE_DATABASE = "pgqueue"
if "pg" in DATABASES:
    DATABASES[QUEUE_DATABASE] = {**DATABASES["pg"], "NAME": f"{_db_name}_queue"}

VTASKS_HEARTBEAT_INTERVAL = 0.2
# Short enough that kill -9 recovery tests take seconds, long enough that a heartbeat delayed by a
# loaded CI machine does not get a live worker pruned (it would fence itself out, exit code 3).
VTASKS_ALIVE_THRESHOLD = 3.0
VTASKS_SHUTDOWN_TIMEOUT = 5

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "vtasks": {"handlers": ["console"], "level": os.environ.get("VTASKS_LOG_LEVEL", "WARNING")}
    },
}

# Scheduler tests start `vtasks scheduler` processes with this set: a one-second schedule.
if os.environ.get("VTASKS_TEST_SCHEDULE_EVERY"):
    VTASKS_SCHEDULE = {
        "tick": {
            "task": "tests.tasks.add",
            "schedule": float(os.environ["VTASKS_TEST_SCHEDULE_EVERY"]),
            "args": [1, 2],
        }
    }

# Batch queues for subprocess workers (tests/integration/test_batches.py): JSON in the environment.
if os.environ.get("VTASKS_TEST_BATCH_QUEUES"):
    import json

    VTASKS_BATCH_QUEUES = json.loads(os.environ["VTASKS_TEST_BATCH_QUEUES"])
