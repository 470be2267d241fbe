"""Print what happened to each demo task."""

import json

from django.core.management.base import BaseCommand
from django.tasks import default_task_backend

from demo.management.commands.demo_enqueue import IDS_FILE


class Command(BaseCommand):
    help = "Show the demo tasks' results."

    def handle(self, *args, **options):
        for task_id in json.loads(IDS_FILE.read_text()):
            result = default_task_backend.get_result(task_id)
            if result.status == "SUCCESSFUL":
                outcome = f"-> {result.return_value!r}"
            elif result.errors:
                last = result.errors[-1]
                outcome = f"-> {last.traceback.strip().splitlines()[-1]}"
            else:
                outcome = ""
            self.stdout.write(
                f"{result.task.name:<20} {result.status:<10} attempts={result.attempts} {outcome}"
            )
