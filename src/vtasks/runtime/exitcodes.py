"""Exit codes children and the supervisor agree on (gunicorn's lesson: special codes stop storms).

A child that cannot even build its worker (an unknown TASKS alias, an import error in a driver)
would fail the same way on every restart; it exits with ``BOOT_ERROR`` and the supervisor halts
instead of restarting it forever. systemd's ``RestartPreventExitStatus`` uses the same number.
"""

from __future__ import annotations

OK = 0
#: An uncaught exception in a child: restart it (with back-off).
CRASH = 1
#: Bad configuration or command line, found before anything was started (the CLI's status).
USAGE = 2
#: The worker's process-table row was pruned while it lived: it fenced itself off; restart it.
FENCED = 3
#: The child could not build its worker: restarting cannot help, the supervisor halts.
BOOT_ERROR = 4

#: Child exit codes that stop the whole supervisor rather than being restarted.
HALT_CODES = frozenset({BOOT_ERROR})
