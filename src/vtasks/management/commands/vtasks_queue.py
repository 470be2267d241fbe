"""``manage.py vtasks_queue info|pause|resume|clear NAME``: ``vtasks queue`` (``vtasks.QueueInfo``).

``clear`` asks for confirmation unless ``--force``; ``manage.py clear_queue`` clears many at once.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from vtasks.ops.queues import add_queue_arguments, queue_lines


class Command(BaseCommand):
    help = "Show a vtasks queue's size and latency; pause, resume or clear it."
    #: ``call_command(..., stdin=io.StringIO("y\n"))`` answers the confirmation in tests.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: Any) -> None:
        add_queue_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        stdin = options.get("stdin") or sys.stdin

        def confirm(question: str) -> bool:
            self.stdout.write(question, ending="")
            self.stdout.flush()
            return stdin.readline().strip().lower() in ("y", "yes")

        try:
            lines = queue_lines(options, confirm)
        except TypeError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write("\n".join(lines))
