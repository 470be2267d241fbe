"""Django's database connections in the worker's task threads: closed after a sync task only in
a thread that ever opened one (``connection_created`` marks it).
"""

from __future__ import annotations

import threading
from typing import Any

from django.db import close_old_connections
from django.db.backends.signals import connection_created


class _ThreadState(threading.local):
    #: Set in each thread that ever opened a database connection. A class default, not
    #: ``getattr(..., False)``: a missing thread-local attribute raises (and formats) an
    #: ``AttributeError`` inside ``getattr``, ~4,000 instructions after every task.
    connected = False


_this_thread = _ThreadState()


def _note_connection(sender: Any, **kwargs: Any) -> None:
    _this_thread.connected = True


connection_created.connect(_note_connection, dispatch_uid="vtasks.task_threads.note_connection")


def close_connections_if_used() -> None:
    """Django's ``close_old_connections`` after a sync task, in a thread that ever connected.

    Django's looks up every database alias in the thread's connections, and each alias the thread
    never used costs an ``AttributeError`` on the way: ~14,000 instructions after every task that
    never touched a database. A thread that never connected has nothing to close.
    """
    if _this_thread.connected:
        close_old_connections()
