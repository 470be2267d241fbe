"""A child must not outlive its supervisor: an orphaned worker would keep claiming unsupervised.

On Linux the kernel sends the child SIGTERM when the supervisor dies (``PR_SET_PDEATHSIG``), and
the worker drains as on any SIGTERM. Elsewhere this is a no-op.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> bool:
    """Ask for SIGTERM when the parent dies; ``False`` if it is already gone (the caller exits)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
            pass
    # The parent may have died between fork() and prctl(): then no signal will ever come.
    return os.getppid() == parent_pid
