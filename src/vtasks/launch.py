"""The supervisor's Django side: what runs in a forked child, and what the parent does before a fork.

L4, because it reaches the backends; the runtime (L3) receives these as plain callables.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import sys
from typing import Any

from vtasks.config import env
from vtasks.runtime import exitcodes, readiness
from vtasks.runtime.identity import process_id
from vtasks.runtime.registration import SupervisorRow
from vtasks.runtime.topology import ChildSpec
from vtasks.runtime.worker_settings import WorkerSettings

logger = logging.getLogger("vtasks.supervisor")


def before_fork() -> None:
    """No open connection may cross ``fork()``: two processes would share one socket."""
    from django.db import connections

    connections.close_all()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # else buffered output would be written twice, by parent and child


def run_child(spec: ChildSpec) -> int:
    """A worker child: build its driver (a failure is a boot error: halt, do not restart), serve.

    A scheduler child runs ``VTASKS_SCHEDULE`` and the topology's schedules instead.
    """
    from vtasks.serve import build_driver, serve_driver

    if spec.kind == "scheduler":
        from vtasks.scheduler import run_scheduler

        readiness.announce()  # up: a reload may stop the scheduler this one replaces
        return run_scheduler(spec.backend, spec.schedules)
    if spec.kind == "metrics":
        from vtasks.ops.metrics import run_exporter

        return run_exporter(spec)

    try:
        driver = build_driver(spec.backend)
    except Exception:
        logger.exception("vtasks: %s cannot build the %r backend's driver", spec.name, spec.backend)
        return exitcodes.BOOT_ERROR
    observer = None
    if spec.metrics is not None:
        from vtasks.ops.metrics import tree_worker_observer

        observer = tree_worker_observer(spec)
    if spec.log_tasks:
        from vtasks.observability import tasklog

        tasklog.log_enqueued()  # tasks that enqueue tasks
        observer = tasklog.combine(observer, tasklog.TaskLog())
    prefix = os.environ.get(env.WORKER_ID) or f"{socket.gethostname()}:{os.getpid()}"
    return serve_driver(
        _Announcing(driver), with_setting_batches(spec.worker), process_id(f"{prefix}:{spec.name}"),
        observer=observer,
    )  # fmt: skip


def with_setting_batches(worker: WorkerSettings) -> WorkerSettings:
    """A pool that names no batch queues in the YAML takes ``VTASKS_BATCH_QUEUES`` (a lower layer)."""
    if worker.batch_queues:
        return worker
    from django.conf import settings

    from vtasks.runtime.batches import SETTING, parse_batch_queues

    found = parse_batch_queues(getattr(settings, SETTING, None))
    return dataclasses.replace(worker, batch_queues=found) if found else worker


def supervisor_row(backend: str) -> SupervisorRow:
    """The supervisor's process-table row, kept through the driver its workers use."""
    from vtasks.serve import build_driver

    return SupervisorRow(lambda: build_driver(backend), prefix=os.environ.get(env.WORKER_ID))


class _Announcing:
    """A worker's driver that reports the child up once the worker registered its row.

    Up means "in the process table, about to claim": a reload stops the old child only then.
    """

    def __init__(self, driver: Any) -> None:
        self._driver = driver

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._driver, name)
        if callable(value):
            setattr(self, name, value)  # the next lookup skips __getattr__ (the claim hot path)
        return value

    async def register(self, info: Any) -> None:
        await self._driver.register(info)
        readiness.announce()
