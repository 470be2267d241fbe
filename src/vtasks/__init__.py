"""vtasks: a fast, reliable ``django.tasks`` backend and the asyncio runtime that runs its tasks."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vtasks.declare import Task, enqueue_on_commit, task
    from vtasks.ops.queues import QueueInfo

__all__ = ["QueueInfo", "Task", "enqueue_on_commit", "task"]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """Everything on first use: importing ``vtasks`` (as the ``vtasks`` command does first) costs
    nothing, so the command can set up its start-up before Django is imported, and the web
    process need not import croniter or the queue controls up front."""
    import importlib

    if name in ("Task", "enqueue_on_commit", "task"):
        return getattr(importlib.import_module("vtasks.declare"), name)
    if name == "schedules":
        return importlib.import_module("vtasks.schedules")
    if name == "QueueInfo":
        return importlib.import_module("vtasks.ops.queues").QueueInfo
    raise AttributeError(f"module 'vtasks' has no attribute {name!r}")
