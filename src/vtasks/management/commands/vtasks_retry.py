"""``manage.py vtasks_retry --failed [--task PATH] [--queue Q] [--backend B]``: ``vtasks retry``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from vtasks.ops.retry import add_retry_arguments, retry_lines


class Command(BaseCommand):
    help = "Put failed vtasks tasks back to READY."

    def add_arguments(self, parser: Any) -> None:
        add_retry_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            lines = retry_lines(options)
        except TypeError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write("\n".join(lines))
