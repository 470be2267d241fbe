"""The forked child's bootstrap: shed the supervisor's state, run the entry point, never return.

Django's setup (done in the parent) is shared, but no database connection, thread or event loop
crosses the fork: the parent closes its connections before forking, and the entry point builds
its own driver and a fresh uvloop.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

from vtasks.runtime import exitcodes
from vtasks.runtime.lifeline import die_with_parent
from vtasks.runtime.readiness import ReadinessPipe
from vtasks.runtime.signals import SignalQueue
from vtasks.runtime.topology import ChildSpec

logger = logging.getLogger("vtasks.supervisor")


def bootstrap(
    spec: ChildSpec,
    entry: Callable[[ChildSpec], int],
    *,
    signals: SignalQueue | None,
    parent_pid: int | None = None,
    readiness: ReadinessPipe | None = None,
    exit: Callable[[int], NoReturn] = os._exit,
) -> NoReturn:
    """Run ``entry(spec)`` in the child and leave with its code, never via the parent's stack.

    ``os._exit`` rather than ``sys.exit``: unwinding would run the parent's ``finally`` blocks and
    atexit hooks (the supervisor loop's) inside the child.
    """
    code = exitcodes.CRASH
    try:
        if signals is not None:
            # The supervisor's handlers and self-pipe are not the child's. A stop signal that
            # arrived since fork() is raised again, now with its default action: nothing is claimed yet.
            for signum in signals.close():
                if signum in (signal.SIGTERM, signal.SIGINT):
                    signal.raise_signal(signum)
        # A SIGHUP is the supervisor's to act on (a reload replaces this child); one sent to the
        # whole process group (a closed terminal, kill -HUP -PGID) must not kill it. A handler,
        # not SIG_IGN: that would be inherited through exec() by the tasks' subprocesses.
        signal.signal(signal.SIGHUP, _ignore)
        if readiness is not None:
            readiness.in_child()  # the entry reports itself up with readiness.announce()
        if parent_pid is not None and not die_with_parent(parent_pid):
            logger.error("vtasks: child %s: the supervisor is already gone; exiting", spec.name)
            code = exitcodes.OK
        else:
            code = entry(spec)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else exitcodes.CRASH
    except BaseException:
        logger.exception("vtasks: child %s crashed", spec.name)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass  # a closed stream must not stop the exit
        exit(code)


def _ignore(signum: int, frame: FrameType | None) -> None:
    pass
