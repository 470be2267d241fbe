"""vtasks: a fast, reliable ``django.tasks`` backend and the asyncio runtime that runs its tasks."""

from vtasks.task import Task, enqueue_on_commit, task

__all__ = ["Task", "enqueue_on_commit", "task"]
__version__ = "0.1.0"
