"""vtasks: a fast, reliable ``django.tasks`` backend and the asyncio runtime that runs its tasks."""

from vtasks.task import Task, enqueue_on_commit, task

__all__ = ["Task", "enqueue_on_commit", "task"]
__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``vtasks.schedules`` and ``vtasks.QueueInfo`` on first use: the web process need not
    import croniter or the queue controls up front."""
    if name == "schedules":
        import importlib

        return importlib.import_module("vtasks.schedules")
    if name == "QueueInfo":
        from vtasks.ops.queues import QueueInfo

        return QueueInfo
    raise AttributeError(f"module 'vtasks' has no attribute {name!r}")
