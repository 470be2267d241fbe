"""``manage.py runworker``: a vtasks worker, with django-vtasks' flags (the same as ``vtasks worker``).

``--concurrency``, ``--queue`` (repeatable), ``--backend``, ``--id``, ``--health-check-file``,
``--scheduler`` and ``--burst``; each flag left out falls back to its ``VTASKS_*`` environment
variable, then the Django setting of the same name, then the default.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from vtasks.serve import add_worker_arguments


class Command(BaseCommand):
    help = "Run a vtasks worker."

    def add_arguments(self, parser: Any) -> None:
        add_worker_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        from vtasks.core.errors import ConfigError
        from vtasks.serve import run_worker_options, worker_options

        try:
            resolved = worker_options(options)
        except ConfigError as exc:
            raise CommandError(str(exc)) from None
        code = run_worker_options(resolved)
        if code:
            raise CommandError(f"worker exited with status {code}", returncode=code)
