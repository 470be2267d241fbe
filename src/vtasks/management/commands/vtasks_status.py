"""``manage.py vtasks_status [--backend B]``: ``vtasks status`` (the process table, queue depths)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from vtasks.ops.status import status_lines


class Command(BaseCommand):
    help = "Show the vtasks process table and per-queue depth."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--backend", default="default", help="the TASKS alias")

    def handle(self, *args: Any, **options: Any) -> None:
        self.stdout.write("\n".join(status_lines(options["backend"])))
