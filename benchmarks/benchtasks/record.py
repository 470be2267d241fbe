"""Record that a task ran: one ``O_APPEND`` write of ``"<key> <monotonic seconds>\\n"`` per task.

Each process appends to its own file under ``$BENCH_OUT_DIR`` (``done-<pid>.log``), so recording costs
a few microseconds and no round trip to any server. A single ``write()`` of a short line to an
``O_APPEND`` descriptor is atomic, so threads of one process can share the descriptor. The time is
``time.monotonic()``: on Linux, ``CLOCK_MONOTONIC`` is one clock for every process on the machine,
so the harness can compare it with its own readings.
"""

from __future__ import annotations

import os
import threading
import time

OUT_DIR_ENV = "BENCH_OUT_DIR"
FILE_PREFIX = "done-"

_lock = threading.Lock()
_fd: int | None = None
_fd_pid: int | None = None


def _descriptor() -> int | None:
    """This process's log descriptor, reopened after a fork; ``None`` when recording is off."""
    global _fd, _fd_pid
    pid = os.getpid()
    if _fd is not None and _fd_pid == pid:
        return _fd
    directory = os.environ.get(OUT_DIR_ENV)
    if not directory:
        return None
    with _lock:
        if _fd is None or _fd_pid != pid:
            path = os.path.join(directory, f"{FILE_PREFIX}{pid}.log")
            _fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            _fd_pid = pid
    return _fd


def record(key: str) -> None:
    """Append ``key`` and the current monotonic time to this process's completion log."""
    now = time.monotonic()
    fd = _descriptor()
    if fd is not None:
        os.write(fd, f"{key} {now:.6f}\n".encode())
