"""Delete finished results past their retention."""

from __future__ import annotations

from datetime import timedelta

from django.tasks import task_backends


def prune(
    backend_alias: str = "default", older_than: float | None = None, batch_size: int = 1000
) -> int:
    backend = task_backends[backend_alias]
    if not hasattr(backend, "purge"):
        raise TypeError(
            f"backend {backend_alias!r} ({type(backend).__name__}) keeps no prunable results"
        )
    age = timedelta(seconds=older_than) if older_than is not None else None
    return backend.purge(batch_size=batch_size, older_than=age)
