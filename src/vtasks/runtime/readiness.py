"""Children tell the supervisor they are up: their pid, written to a pipe the supervisor watches.

A rolling reload stops an old child only once its replacement is up, and ``READY=1`` waits for every
child; "up" means registered in the process table (a worker) or about to loop (a scheduler). One
pipe serves every child: a write of a few bytes is atomic, so lines never interleave. A plain file
descriptor is all that crosses ``fork()``.
"""

from __future__ import annotations

import os

#: The write end in a forked child, until it announced itself (the one per-process state here).
_announce_fd: int | None = None


class ReadinessPipe:
    """The supervisor's end: ``fileno()`` to wait on, ``collect()`` for the pids announced."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        for fd in (self._read, self._write):
            # A child never blocks on a full pipe; the parent never waits for it.
            os.set_blocking(fd, False)
        self._partial = b""

    def fileno(self) -> int:
        return self._read

    def collect(self) -> list[int]:
        """The pids announced since the last call."""
        data = self._partial
        try:
            while chunk := os.read(self._read, 4096):
                data += chunk
        except BlockingIOError:
            pass
        *lines, self._partial = data.split(b"\n")
        return [int(line) for line in lines if line.strip().isdigit()]

    def in_child(self) -> None:
        """In a forked child: keep only the write end, for ``announce()``."""
        global _announce_fd
        os.close(self._read)
        _announce_fd = self._write

    def close(self) -> None:
        for fd in (self._read, self._write):
            try:
                os.close(fd)
            except OSError:
                pass


def announce() -> None:
    """Report this child up to its supervisor, once; a no-op outside a supervised child."""
    global _announce_fd
    fd, _announce_fd = _announce_fd, None
    if fd is None:
        return
    try:
        os.write(fd, b"%d\n" % os.getpid())
    except OSError:
        pass  # the supervisor then counts the child up after its ready_timeout
    finally:
        os.close(fd)
