"""``manage.py benchmark_vtasks``: enqueue tasks in bulk, drain them with an in-process worker,
and print both rates (django-vtasks' flags: ``--count``, ``--concurrency``, ``--backend-alias``,
``--task-type noop|sleep``, ``--payload-size``)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.tasks.exceptions import InvalidTask

from vtasks.benchmarking import DEFAULT_QUEUE, TASKS


class Command(BaseCommand):
    help = "Measure enqueue and processing rates on a vtasks backend."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--count", type=int, default=1000, help="tasks to run (default 1000)")
        parser.add_argument("--concurrency", type=int, default=20,
                            help="the worker's concurrency (default 20)")  # fmt: skip
        parser.add_argument("--backend-alias", default="default", help="the TASKS alias")
        parser.add_argument("--task-type", choices=sorted(TASKS), default="noop",
                            help="noop, or sleep (an async task that waits 10 ms)")  # fmt: skip
        parser.add_argument("--payload-size", type=int, default=0,
                            help="bytes of string argument per task (default 0)")  # fmt: skip
        parser.add_argument("--queue", default=DEFAULT_QUEUE,
                            help=f"the queue to use; keep it apart from real work (default "
                            f"{DEFAULT_QUEUE})")  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        from vtasks.benchmarking import run

        for name in ("count", "concurrency"):
            if options[name] < 1:
                raise CommandError(f"--{name} must be >= 1, got {options[name]}")
        if options["payload_size"] < 0:
            raise CommandError(f"--payload-size must be >= 0, got {options['payload_size']}")
        alias = options["backend_alias"]
        try:
            rates = run(
                backend_alias=alias, count=options["count"], concurrency=options["concurrency"],
                task_type=options["task_type"], payload_size=options["payload_size"],
                queue=options["queue"],
            )  # fmt: skip
        except (ImproperlyConfigured, InvalidTask) as exc:
            raise CommandError(f"backend {alias!r}: {exc}") from None
        self.stdout.write(
            f"vtasks benchmark: {rates.count} {options['task_type']} task(s), payload "
            f"{options['payload_size']} B, concurrency {options['concurrency']}, backend {alias!r}"
        )
        self.stdout.write(
            f"enqueue: {rates.count} in {rates.enqueue_seconds:.3f} s = "
            f"{rates.enqueue_rate:,.0f} tasks/s"
        )
        self.stdout.write(
            f"process: {rates.processed} in {rates.process_seconds:.3f} s = "
            f"{rates.process_rate:,.0f} tasks/s"
        )
        if rates.processed != rates.count:
            raise CommandError(f"only {rates.processed} of {rates.count} task(s) succeeded")
