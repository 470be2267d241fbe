"""The supervisor as a service runs it: real signals and ``fork()``, the children's readiness pipe,
and sd_notify from the environment systemd sets."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from vtasks.config import env
from vtasks.runtime.child import bootstrap
from vtasks.runtime.notify import Notifier
from vtasks.runtime.readiness import ReadinessPipe
from vtasks.runtime.report import ProcessRow
from vtasks.runtime.signals import SignalQueue
from vtasks.runtime.supervisor import ChildObserver, Supervisor
from vtasks.runtime.topology import ChildSpec, Plan, SupervisorSettings


def supervise(
    specs: Sequence[ChildSpec],
    settings: SupervisorSettings,
    entry: Callable[[ChildSpec], int],
    *,
    before_fork: Callable[[], None] = lambda: None,
    reload: Callable[[], Plan] | None = None,
    row: ProcessRow | None = None,
    observer: ChildObserver | None = None,
) -> int:
    """Run the real supervisor: process signals, ``os.fork``, ``entry(spec)`` in each child.

    ``entry``, ``reload`` and ``row`` come from upper layers (``vtasks.launch``, the CLI), so the
    runtime never imports Django or a backend.
    """
    notifier = Notifier.from_environ()
    for name in (env.NOTIFY_SOCKET, env.WATCHDOG_USEC, env.WATCHDOG_PID):
        # The children and the tasks' subprocesses are not the service's main process.
        os.environ.pop(name, None)
    signals = SignalQueue()
    signals.install()
    readiness = ReadinessPipe()
    signals.watch(readiness.fileno())
    parent = os.getpid()
    try:
        supervisor = Supervisor(
            specs, settings, signals=signals, before_fork=before_fork, readiness=readiness,
            reload=reload, row=row, notifier=notifier, observer=observer,
            child_main=lambda spec: bootstrap(
                spec, entry, signals=signals, parent_pid=parent, readiness=readiness
            ),
        )  # fmt: skip
        return supervisor.run()
    finally:
        signals.close()
        readiness.close()
