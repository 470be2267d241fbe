"""``vtasks.QueueInfo``: one queue's size, latency and pause state, and its controls.

Every property reads the backend afresh (one ``queue_depths`` call); nothing is cached.
"""

from __future__ import annotations

from typing import Any

from django.tasks import task_backends


class QueueInfo:
    """``QueueInfo("orders", backend="default")`` on a vtasks database or Valkey backend."""

    def __init__(self, name: str, backend: str = "default") -> None:
        self.name = name
        self.backend_alias = backend

    def __repr__(self) -> str:
        return f"QueueInfo({self.name!r}, backend={self.backend_alias!r})"

    @property
    def backend(self) -> Any:
        found = task_backends[self.backend_alias]
        if not hasattr(found, "queue_depths"):
            raise TypeError(
                f"backend {self.backend_alias!r} ({type(found).__name__}) has no queue controls: "
                "use a vtasks database or Valkey backend"
            )
        return found

    def depth(self) -> dict[str, Any]:
        """``ready``, ``delayed``, ``running``, ``failed``, ``oldest_age`` and ``paused``."""
        found = self.backend.queue_depths([self.name]).get(self.name)
        return dict(found) if found else {"ready": 0, "delayed": 0, "running": 0, "failed": 0}

    @property
    def size(self) -> int:
        """Tasks waiting to run: ready (due now) and delayed (``run_after`` or a retry's time)."""
        depth = self.depth()
        return int(depth.get("ready", 0)) + int(depth.get("delayed", 0))

    @property
    def latency(self) -> float:
        """Seconds the oldest ready task has waited since it became due (0.0: none waits)."""
        return float(self.depth().get("oldest_age") or 0.0)

    @property
    def paused(self) -> bool:
        return bool(self.depth().get("paused", False))

    def pause(self) -> None:
        """No worker claims from this queue until ``resume()`` (enqueues still land)."""
        self._control("pause_queue")(self.name)

    def resume(self) -> bool:
        """Whether it was paused."""
        return bool(self._control("resume_queue")(self.name))

    def clear(self, *, failed: bool = False) -> int:
        """Delete the waiting tasks (and with ``failed`` the failed ones); never running ones."""
        from vtasks.ops.clear import clear_queues

        return clear_queues(self.backend_alias, [self.name], failed=failed)[self.name]

    def _control(self, name: str) -> Any:
        method = getattr(self.backend, name, None)
        if method is None:
            raise TypeError(f"backend {self.backend_alias!r} cannot {name.split('_')[0]} queues")
        return method


# -- ``vtasks queue`` and ``manage.py vtasks_queue`` -------------------------------------------
ACTIONS = ("info", "pause", "resume", "clear")


def add_queue_arguments(parser: Any) -> None:
    parser.add_argument("action", choices=ACTIONS, help="show, pause, resume or clear the queue")
    parser.add_argument("name", metavar="QUEUE", help="the queue name")
    parser.add_argument("--backend", default="default", help="the TASKS alias")
    parser.add_argument("--failed", action="store_true", help="clear: delete failed tasks too")
    parser.add_argument("--force", action="store_true", help="clear: do not ask for confirmation")


def queue_lines(options: dict[str, Any], confirm: Any) -> list[str]:
    """Run ``options["action"]`` on the queue; ``confirm(question)`` answers a clear's prompt."""
    info = QueueInfo(options["name"], backend=options["backend"])
    action = options["action"]
    if action == "pause":
        info.pause()
        return [f"vtasks: paused {info.name}"]
    if action == "resume":
        return [f"vtasks: resumed {info.name}" if info.resume() else f"{info.name} was not paused"]
    if action == "clear":
        what = "waiting and failed" if options.get("failed") else "waiting"
        question = f"Delete the {what} tasks of {info.name}? [y/N] "
        if not options.get("force") and not confirm(question):
            return ["vtasks: nothing cleared"]
        return [f"vtasks: cleared {info.clear(failed=bool(options.get('failed')))} task(s)"]
    depth = info.depth()
    age = depth.get("oldest_age")
    return [
        f"{info.name}: size={int(depth.get('ready', 0)) + int(depth.get('delayed', 0))} "
        f"ready={depth.get('ready', 0)} delayed={depth.get('delayed', 0)} "
        f"running={depth.get('running', 0)} failed={depth.get('failed', 0)} "
        f"latency={0.0 if age is None else age:.1f}s paused={bool(depth.get('paused'))}"
    ]
