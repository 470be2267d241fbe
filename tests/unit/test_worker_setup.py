"""The worker-only trim (``vtasks.worker_setup``) and the queue router's choice of database."""

from __future__ import annotations

import pytest

from vtasks.core.errors import ConfigError
from vtasks.routers import queue_databases
from vtasks.worker_setup import configure_worker, is_worker, prune_installed_apps

APPS = [
    "django.contrib.admin.apps.SimpleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "debug_toolbar",
    "vtasks",
    "myapp",
]


def test_prune_keeps_order_and_what_tasks_may_need():
    assert prune_installed_apps(APPS) == [
        "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
        "vtasks", "myapp",
    ]  # fmt: skip


def test_prune_with_keep_and_remove():
    kept = prune_installed_apps(APPS, keep=["django.contrib.admin"])
    assert "django.contrib.admin.apps.SimpleAdminConfig" in kept
    assert prune_installed_apps(["a", "a.apps.AConfig", "ab"], remove=["a"]) == ["ab"]


@pytest.mark.parametrize(
    ("raw", "worker"), [("true", True), ("1", True), ("", False), ("no", False)]
)
def test_is_worker_reads_the_environment(raw, worker):
    assert is_worker({"VTASKS_IS_WORKER": raw}) is worker


def test_a_typo_in_is_worker_is_an_error():
    with pytest.raises(ConfigError, match="VTASKS_IS_WORKER: must be true or false"):
        is_worker({"VTASKS_IS_WORKER": "ture"})


def test_configure_worker_changes_settings_only_in_a_worker():
    web = {"INSTALLED_APPS": list(APPS), "ROOT_URLCONF": "site.urls", "MIDDLEWARE": ["m"]}
    assert configure_worker(web, environ={}) is False
    assert web["ROOT_URLCONF"] == "site.urls" and web["INSTALLED_APPS"] == APPS
    worker = dict(web)
    assert configure_worker(worker, environ={"VTASKS_IS_WORKER": "true"}, keep=["debug_toolbar"])
    assert worker["ROOT_URLCONF"] == "vtasks.urls_empty" and worker["MIDDLEWARE"] == []
    assert "debug_toolbar" in worker["INSTALLED_APPS"]
    assert "django.contrib.staticfiles" not in worker["INSTALLED_APPS"]


def test_the_empty_urlconf_is_empty():
    from vtasks import urls_empty

    assert urls_empty.urlpatterns == []


def test_queue_databases_are_the_database_backends_aliases():
    tasks = {
        "default": {"BACKEND": "vtasks.backends.database.DatabaseBackend"},
        "queue": {
            "BACKEND": "vtasks.backends.database.DatabaseBackend",
            "OPTIONS": {"database_alias": "queue"},
        },
        "again": {
            "BACKEND": "vtasks.backends.database.DatabaseBackend",
            "OPTIONS": {"database_alias": "queue"},
        },
        "valkey": {"BACKEND": "vtasks.backends.valkey.ValkeyBackend"},
        "dummy": {"BACKEND": "django.tasks.backends.dummy.DummyBackend"},
        "gone": {"BACKEND": "nowhere.Backend"},
    }
    assert queue_databases(tasks) == ["default", "queue"]
