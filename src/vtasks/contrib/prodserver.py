"""A django-prodserver backend: ``python manage.py worker <name>`` runs ``vtasks supervise``.

    INSTALLED_APPS = [..., "django_prodserver", "vtasks"]
    PRODUCTION_PROCESSES = {
        "tasks": {
            "BACKEND": "vtasks.contrib.prodserver.VTasksSupervisor",
            "ARGS": {"config": "vtasks.yml"},
        },
    }

ARGS are ``vtasks supervise`` options, written the django-prodserver way: ``{"config":
"vtasks.yml", "burst": None}`` becomes ``--config=vtasks.yml --burst``.

The command's process *becomes* the supervisor (``exec``), for two reasons: the process manager's
SIGTERM and SIGHUP then reach the supervisor itself, not a parent that would have to forward
them; and the children fork from a fresh interpreter, not from one that ran a management command
(the runtime must not be imported from here anyway: ``cli`` sits a layer above ``contrib``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from django_prodserver.backends.base import BaseWorkerBackend


class VTasksSupervisor(BaseWorkerBackend):
    """Replace the current process with ``vtasks supervise`` for the running settings module."""

    def start_server(self, *args: str) -> None:
        argv = supervise_argv(args)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # exec discards whatever is still buffered
        os.execv(argv[0], argv)


def supervise_argv(args: Sequence[str]) -> list[str]:
    """The ``vtasks supervise`` command line that carries on this process's Django set-up."""
    from django.conf import settings

    argv = [sys.executable, "-m", "vtasks.cli.main"]
    if settings.SETTINGS_MODULE:  # None under settings.configure(): DJANGO_SETTINGS_MODULE, if any
        argv += ["--settings", settings.SETTINGS_MODULE]
    # sys.path[0] is manage.py's directory, or --pythonpath when the command was given one.
    return [*argv, "--pythonpath", sys.path[0] or os.getcwd(), "supervise", *args]
