"""``manage.py vtasks_prune``: delete finished results past their retention, in batches."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from vtasks.ops.prune import prune


class Command(BaseCommand):
    help = "Delete finished vtasks results past their retention."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--backend", default="default")
        parser.add_argument(
            "--older-than", type=float, help="seconds: also delete results finished earlier"
        )
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args: Any, **options: Any) -> None:
        count = prune(options["backend"], options["older_than"], options["batch_size"])
        self.stdout.write(f"vtasks: purged {count} result(s)")
