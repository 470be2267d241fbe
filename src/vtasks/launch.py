"""The supervisor's Django side: what runs in a forked child, and what the parent does before a fork.

L4, because it reaches the backends; the runtime (L3) receives these as plain callables.
"""

from __future__ import annotations

import logging
import os
import socket
import sys

from vtasks.config import env
from vtasks.runtime import exitcodes
from vtasks.runtime.identity import process_id
from vtasks.runtime.topology import ChildSpec

logger = logging.getLogger("vtasks.supervisor")


def before_fork() -> None:
    """No open connection may cross ``fork()``: two processes would share one socket."""
    from django.db import connections

    connections.close_all()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # else buffered output would be written twice, by parent and child


def run_child(spec: ChildSpec) -> int:
    """A worker child: build its driver (a failure is a boot error: halt, do not restart), serve.

    A scheduler child runs ``VTASKS_SCHEDULE`` instead.
    """
    from vtasks.serve import build_driver, serve_driver

    if spec.kind == "scheduler":
        from vtasks.scheduler import run_scheduler

        return run_scheduler(spec.backend)

    try:
        driver = build_driver(spec.backend)
    except Exception:
        logger.exception("vtasks: %s cannot build the %r backend's driver", spec.name, spec.backend)
        return exitcodes.BOOT_ERROR
    prefix = os.environ.get(env.WORKER_ID) or f"{socket.gethostname()}:{os.getpid()}"
    return serve_driver(driver, spec.worker, process_id(f"{prefix}:{spec.name}"))
