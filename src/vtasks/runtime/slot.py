"""A child's place in the topology: its process comes and goes, the slot stays."""

from __future__ import annotations

from dataclasses import dataclass

from vtasks.runtime.topology import ChildSpec


@dataclass(slots=True, eq=False)
class Slot:
    """One child of the running topology (or one being retired by a reload).

    Compared by identity: during a reload two slots may hold equal specs.
    """

    spec: ChildSpec
    pid: int | None = None
    started_at: float = 0.0
    #: Crashes in a row (reset once a child outlives ``stable_after``).
    failures: int = 0
    #: When to (re)start the slot's process; ``None``: not to be restarted.
    start_at: float | None = 0.0
    restarts: int = 0
    #: The current process reported itself up (or outlived ``ready_timeout``).
    ready: bool = False
    #: When to SIGKILL the process if it has not exited (it was sent SIGTERM).
    kill_at: float | None = None
    killed: bool = False
