"""``manage.py runworker``: a vtasks worker, with the same flags as ``vtasks worker``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from vtasks.serve import add_worker_arguments


class Command(BaseCommand):
    help = "Run a vtasks worker."

    def add_arguments(self, parser: Any) -> None:
        add_worker_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        from vtasks.serve import run_worker

        if options["concurrency"] < 1:
            raise CommandError(f"--concurrency must be >= 1, got {options['concurrency']}")
        code = run_worker(
            backend=options["backend"], queues=options["queues"] or ["default"],
            concurrency=options["concurrency"], burst=options["burst"], worker_id=options["worker_id"],
        )  # fmt: skip
        if code:
            raise CommandError(f"worker exited with status {code}", returncode=code)
