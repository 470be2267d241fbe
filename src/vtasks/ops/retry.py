"""Put failed tasks back to READY: ``vtasks retry --failed`` and ``manage.py vtasks_retry``.

Through the backends' own ``retry_failed``/``retry_all_failed`` (one fenced change per task), so a
retry racing a worker or another operator changes nothing twice.
"""

from __future__ import annotations

import argparse
import inspect
from typing import Any

from django.tasks import task_backends

#: Valkey filters dead letters by task path client-side: at most this many per queue are read.
DEAD_LETTER_SCAN = 100_000


def add_retry_arguments(parser: argparse.ArgumentParser | Any) -> None:
    parser.add_argument("--failed", action="store_true", required=True,
                        help="retry FAILED tasks (dead letters): the only kind retried")  # fmt: skip
    parser.add_argument("--task", dest="task_path", metavar="PATH",
                        help="only tasks of this path (module.function)")  # fmt: skip
    parser.add_argument("--queue", metavar="NAME", help="only this queue (default: every queue)")
    parser.add_argument("--backend", default="default", help="the TASKS alias")


def retry_failed(
    backend_alias: str = "default", *, queue: str | None = None, task_path: str | None = None
) -> dict[str, int]:
    """Retry the FAILED tasks that match; how many went back, per queue."""
    backend = task_backends[backend_alias]
    if not (hasattr(backend, "retry_all_failed") and hasattr(backend, "queue_depths")):
        raise TypeError(
            f"backend {backend_alias!r} ({type(backend).__name__}) cannot retry tasks: use a "
            "vtasks database or Valkey backend"
        )
    queues = [queue] if queue is not None else sorted(backend.queue_depths())
    return {name: _retry_queue(backend, name, task_path) for name in queues}


def _retry_queue(backend: Any, queue: str, task_path: str | None) -> int:
    if task_path is None:
        return int(backend.retry_all_failed(queue))
    if "task_path" in inspect.signature(backend.retry_all_failed).parameters:
        return int(backend.retry_all_failed(queue, task_path=task_path))
    rows = backend.list_tasks("failed", queue=queue, limit=DEAD_LETTER_SCAN)
    return sum(
        bool(backend.retry_failed(row["id"])) for row in rows if row["task_path"] == task_path
    )


def retry_lines(options: dict[str, Any]) -> list[str]:
    """Run a retry from parsed options; the lines to print."""
    counts = retry_failed(
        options["backend"], queue=options.get("queue"), task_path=options.get("task_path")
    )
    what = f" of {options['task_path']}" if options.get("task_path") else ""
    lines = [f"vtasks: retried {count} failed task(s){what} in {q}" for q, count in counts.items()]
    return lines or ["vtasks: no queues"]
