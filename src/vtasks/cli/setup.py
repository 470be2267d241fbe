"""Django set-up for the command line: the settings module and the import path."""

from __future__ import annotations

import os
import sys

from vtasks.config import env


def add_path(pythonpath: str | None) -> None:
    if pythonpath:
        sys.path.insert(0, os.path.abspath(pythonpath))
    elif os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def django_setup(settings_module: str | None) -> None:
    """``django.setup()`` with ``settings_module`` (else ``DJANGO_SETTINGS_MODULE``)."""
    if settings_module:
        os.environ[env.DJANGO_SETTINGS_MODULE] = settings_module
    if not os.environ.get(env.DJANGO_SETTINGS_MODULE):
        raise SystemExit("vtasks: set DJANGO_SETTINGS_MODULE or pass --settings")
    import django

    django.setup()
