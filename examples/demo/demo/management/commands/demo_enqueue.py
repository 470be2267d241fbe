"""Enqueue the demo tasks and remember their ids."""

import json
from datetime import timedelta
from pathlib import Path

from django.core.management.base import BaseCommand
from django.tasks import default_task_backend

from demo import tasks

IDS_FILE = Path(__file__).resolve().parents[3] / "demo-ids.json"


class Command(BaseCommand):
    help = "Enqueue the demo tasks."

    def handle(self, *args, **options):
        results = [
            tasks.add.enqueue(2, 3),
            tasks.send_welcome_email.enqueue("ada@example.com"),
            tasks.report_attempt.enqueue("context demo"),
            tasks.divide.enqueue(1, 0),
            tasks.flaky_fetch.enqueue("https://example.com/feed"),
            tasks.remind.using(run_after=timedelta(seconds=2)).enqueue(
                "runs two seconds after enqueue"
            ),
            tasks.add.using(unique=True, unique_key="nightly-add").enqueue(40, 2),
        ]
        duplicate = tasks.add.using(unique=True, unique_key="nightly-add").enqueue(40, 2)
        bulk = default_task_backend.enqueue_many([(tasks.add, (i, i), {}) for i in range(5)])
        results += bulk
        IDS_FILE.write_text(json.dumps([r.id for r in results]))
        self.stdout.write(f"enqueued {len(results)} tasks ({len(bulk)} in one bulk insert)")
        self.stdout.write(
            f"a second unique 'nightly-add' enqueue returned {duplicate!r} (the key is taken)"
        )
