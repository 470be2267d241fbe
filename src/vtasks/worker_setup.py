"""Trim a worker-only process: fewer apps loaded, no URLconf imported. Called from settings.py.

A worker imports every installed app's models and, through the system checks that management
commands run, the whole URLconf with every view module behind it: memory a process that only runs
tasks never uses. In a settings file::

    from vtasks.worker_setup import configure_worker
    ...
    configure_worker(globals())   # acts only when VTASKS_IS_WORKER=true

or, by hand, ``INSTALLED_APPS = prune_installed_apps(INSTALLED_APPS)`` and
``ROOT_URLCONF = "vtasks.urls_empty"``. Keep the apps and URLs your tasks use: a task that calls
``reverse()`` needs the real URLconf, one that writes admin log entries needs the admin.
Nothing here reads Django's settings: this runs while they are being read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, MutableMapping, Sequence
from typing import Any

from vtasks.config.env import IS_WORKER, IS_WORKER_SETTING

#: Apps that serve only web requests (pages, static files, the admin, debugging), by module.
WEB_ONLY_APPS: tuple[str, ...] = (
    "django.contrib.admin",
    "django.contrib.admindocs",
    "django.contrib.humanize",
    "django.contrib.messages",
    "django.contrib.sitemaps",
    "django.contrib.staticfiles",
    "django.contrib.syndication",
    "corsheaders",
    "debug_toolbar",
    "django_browser_reload",
    "whitenoise.runserver_nostatic",
)
EMPTY_URLCONF = "vtasks.urls_empty"


def is_worker(environ: MutableMapping[str, str] | None = None) -> bool:
    """Whether the environment variable ``VTASKS_IS_WORKER`` says this process only runs tasks
    (``true``/``1``/``yes``/``on``; a typo is a ``ConfigError``, not a silent web process)."""
    raw = (os.environ if environ is None else environ).get(IS_WORKER, "")
    return bool(IS_WORKER_SETTING.parse(raw, f"environment variable {IS_WORKER}"))


def prune_installed_apps(
    apps: Iterable[str], *, remove: Iterable[str] = WEB_ONLY_APPS, keep: Iterable[str] = ()
) -> list[str]:
    """``apps`` without the web-only ones (``remove``), in their order; ``keep`` names exceptions.

    An entry matches by module (``"django.contrib.admin"``) or by an app config inside it
    (``"django.contrib.admin.apps.SimpleAdminConfig"``).
    """
    removed = set(remove) - set(keep)

    def web_only(entry: str) -> bool:
        return any(entry == name or entry.startswith(f"{name}.apps.") for name in removed)

    return [entry for entry in apps if not web_only(entry)]


def configure_worker(
    namespace: MutableMapping[str, Any],
    *,
    keep: Sequence[str] = (),
    environ: MutableMapping[str, str] | None = None,
) -> bool:
    """In a worker-only process (``VTASKS_IS_WORKER=true``), trim the settings in ``namespace``
    (a settings module's ``globals()``): prune ``INSTALLED_APPS``, point ``ROOT_URLCONF`` at an
    empty URLconf and drop ``MIDDLEWARE`` (no request is ever handled). Whether it did."""
    if not is_worker(environ):
        return False
    namespace["INSTALLED_APPS"] = prune_installed_apps(
        namespace.get("INSTALLED_APPS", ()), keep=keep
    )
    namespace["ROOT_URLCONF"] = EMPTY_URLCONF
    namespace["MIDDLEWARE"] = []
    return True
