"""Delete the waiting tasks of queues: shared by ``manage.py clear_queue`` and anything else."""

from __future__ import annotations

from collections.abc import Sequence

from django.tasks import task_backends


def clearable_queues(backend_alias: str) -> list[str]:
    """Every queue the backend knows of (has tasks in, or had on Valkey), sorted."""
    backend = task_backends[backend_alias]
    _require(backend_alias, backend)
    return sorted(backend.queue_depths())


def clear_queues(
    backend_alias: str, queues: Sequence[str], *, failed: bool = False
) -> dict[str, int]:
    """Clear each queue (its ready and delayed tasks; with ``failed`` its failed ones too; never
    running ones) and return how many tasks each lost."""
    backend = task_backends[backend_alias]
    _require(backend_alias, backend)
    return {queue: backend.clear_queue(queue, failed=failed) for queue in queues}


def _require(alias: str, backend: object) -> None:
    if not (hasattr(backend, "clear_queue") and hasattr(backend, "queue_depths")):
        raise TypeError(
            f"backend {alias!r} ({type(backend).__name__}) cannot clear queues: use a vtasks "
            "database or Valkey backend"
        )
