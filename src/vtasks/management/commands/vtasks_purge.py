"""``manage.py vtasks_purge --older-than SECONDS``: ``vtasks purge`` (``vtasks_prune``'s name twin)."""

from vtasks.management.commands.vtasks_prune import Command

__all__ = ["Command"]
