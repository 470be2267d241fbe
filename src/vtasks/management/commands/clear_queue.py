"""``manage.py clear_queue``: delete the waiting tasks of one queue, several, or all of them.

django-vtasks' flags: ``--backend-alias``, ``--queue`` (repeatable, default ``default``),
``--all-queues``, ``--failed`` (failed tasks too), ``--force`` (no confirmation). Running tasks
are never touched. Without ``--force`` it asks on stdin and does nothing unless the answer is yes.
"""

from __future__ import annotations

import sys
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError

from vtasks.ops.clear import clear_queues, clearable_queues


class Command(BaseCommand):
    help = "Delete the waiting tasks of vtasks queues (never running ones)."
    #: ``call_command(..., stdin=io.StringIO("y\n"))`` answers the confirmation in tests.
    stealth_options = ("stdin",)

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--backend-alias", default="default", help="the TASKS alias")
        which = parser.add_mutually_exclusive_group()
        which.add_argument("--queue", action="append", dest="queues", metavar="NAME",
                           help="a queue to clear, repeatable (default: default)")  # fmt: skip
        which.add_argument("--all-queues", action="store_true", help="every queue of the backend")
        parser.add_argument("--failed", action="store_true", help="delete failed tasks too")
        parser.add_argument("--force", action="store_true", help="do not ask for confirmation")

    def handle(self, *args: Any, **options: Any) -> None:
        alias = options["backend_alias"]
        try:
            queues = clearable_queues(alias) if options["all_queues"] else None
        except (ImproperlyConfigured, TypeError) as exc:
            raise CommandError(str(exc).strip("'\"")) from None
        queues = queues if queues is not None else options["queues"] or ["default"]
        if not queues:
            self.stdout.write(f"vtasks: backend {alias!r} has no queues to clear")
            return
        what = "waiting and failed" if options["failed"] else "waiting"
        names = ", ".join(queues)
        if not options["force"] and not self._confirmed(
            f"Delete the {what} tasks of {names} on backend {alias!r}? [y/N] ",
            options.get("stdin") or sys.stdin,
        ):
            self.stdout.write("vtasks: nothing cleared")
            return
        try:
            counts = clear_queues(alias, queues, failed=options["failed"])
        except (ImproperlyConfigured, TypeError) as exc:
            raise CommandError(str(exc).strip("'\"")) from None
        for queue, count in counts.items():
            self.stdout.write(f"vtasks: cleared {count} task(s) from {queue}")

    def _confirmed(self, question: str, stdin: Any) -> bool:
        self.stdout.write(question, ending="")
        self.stdout.flush()
        answer = stdin.readline()
        return answer.strip().lower() in ("y", "yes")
