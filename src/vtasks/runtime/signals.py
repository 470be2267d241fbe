"""The supervisor's signals: handlers only record the number; the main loop acts on it.

Gunicorn's arbiter spent years on deadlocks from logging inside handlers. Here a handler appends
to a deque, and ``signal.set_wakeup_fd`` writes a byte to a self-pipe at C level, so a signal that
lands just before the loop blocks still wakes it (no lost-wakeup race).
"""

from __future__ import annotations

import collections
import os
import select
import signal
from types import FrameType
from typing import Any

WATCHED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)


class SignalQueue:
    """Install with ``install()``, block in ``wait(timeout)``, undo with ``close()``."""

    def __init__(self, watched: tuple[signal.Signals, ...] = WATCHED) -> None:
        self.watched = watched
        self._pending: collections.deque[int] = collections.deque()
        self._pipe: tuple[int, int] | None = None
        self._previous: dict[int, Any] = {}
        self._previous_wakeup = -1
        self._also: list[int] = []

    def install(self) -> None:
        read_fd, write_fd = os.pipe()
        for fd in (read_fd, write_fd):
            os.set_blocking(fd, False)
            os.set_inheritable(fd, False)
        self._pipe = (read_fd, write_fd)
        self._previous_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        for signum in self.watched:
            self._previous[signum] = signal.signal(signum, self._record)

    def watch(self, fd: int) -> None:
        """Also return from ``wait`` when ``fd`` is readable (the children's readiness pipe)."""
        self._also.append(fd)

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self._pending.append(signum)

    def wait(self, timeout: float) -> list[int]:
        """Signals received since the last call, waiting up to ``timeout`` seconds for one (or for
        a watched descriptor to become readable)."""
        if self._pipe is None:
            raise RuntimeError("SignalQueue.wait() before install()")
        if not self._pending and timeout > 0:
            select.select([self._pipe[0], *self._also], [], [], timeout)
        self._drain_pipe()
        received = []
        while self._pending:
            received.append(self._pending.popleft())
        return received

    def close(self) -> list[int]:
        """Restore the previous handlers and close the pipe; returns signals not yet collected.

        A forked child calls this first: a TERM that reached it between ``fork()`` and here was
        recorded by the parent's handler, and the child must act on it rather than lose it.
        """
        if self._pipe is None:
            return []
        pending = list(self._pending)
        for signum, previous in self._previous.items():
            signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
        signal.set_wakeup_fd(self._previous_wakeup)
        for fd in self._pipe:
            os.close(fd)
        self._pipe = None
        self._previous.clear()
        self._pending.clear()
        self._also.clear()
        return pending

    def _drain_pipe(self) -> None:
        assert self._pipe is not None
        try:
            while os.read(self._pipe[0], 512):
                pass
        except BlockingIOError:
            pass
