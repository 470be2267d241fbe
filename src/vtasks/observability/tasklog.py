"""One log line per task event: ``enqueued``, ``started``, ``finished``, ``retried``, ``dead``.

Opt-in (``log_tasks: true`` in the topology, ``VTASKS_LOG_TASKS=true`` for a lone worker): a line
per task costs far more than the task at thousands a second. The worker hands over whole batches
(claims as they are claimed, outcomes as they are recorded), the same hook as its metrics; so
``started`` is written when the claim is taken (a prefetched claim starts a moment later). Each
record carries its fields in ``record.vtasks`` (``event``, ``task_id``, ``task_name``, ``queue``,
``attempt``, ``duration``): the JSON format writes them as keys, the text format in the message.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vtasks.drivers.base import Claim, Outcome

logger = logging.getLogger("vtasks.tasks")

#: Outcome status -> event name.
EVENTS = {"SUCCESSFUL": "finished", "READY": "retried", "FAILED": "dead"}


def _emit(event: str, task_id: str, name: str, queue: str, attempt: int | None,
          duration: float | None = None) -> None:  # fmt: skip
    fields: dict[str, Any] = {"event": event, "task_id": task_id, "task_name": name,
                              "queue": queue, "attempt": attempt}  # fmt: skip
    text = f"task {event}: {name} {task_id} queue={queue}"
    if attempt is not None:
        text += f" attempt={attempt}"
    if duration is not None:
        fields["duration"] = round(duration, 6)
        text += f" duration={duration:.3f}s"
    logger.info(text, extra={"vtasks": fields})


class TaskLog:
    """The worker's observer that logs; ``running``/``recovered`` are the metrics' business."""

    def claimed(self, claims: Sequence[Claim]) -> None:
        if not logger.isEnabledFor(logging.INFO):
            return
        for claim in claims:
            _emit("started", claim.id, claim.task_path, claim.queue_name, claim.attempt)

    def finished(self, outcomes: Sequence[Outcome]) -> None:
        if not logger.isEnabledFor(logging.INFO):
            return
        for outcome in outcomes:
            claim = outcome.claim
            duration = (outcome.finished_at - claim.last_attempted_at).total_seconds()
            event = EVENTS.get(outcome.status, outcome.status.lower())
            _emit(event, claim.id, claim.task_path, claim.queue_name, claim.attempt, duration)

    def running(self, claims: Iterable[Claim]) -> None:
        pass

    def recovered(self, requeued: int, failed: int) -> None:
        pass

    def loop_blocked(self, task_name: str) -> None:
        pass  # the watch logs the episode itself


class Observers:
    """Several observers as one (the worker takes one): metrics and the task log."""

    def __init__(self, *observers: Any) -> None:
        self.observers = [o for o in observers if o is not None]

    def claimed(self, claims: Sequence[Claim]) -> None:
        for observer in self.observers:
            observer.claimed(claims)

    def finished(self, outcomes: Sequence[Outcome]) -> None:
        for observer in self.observers:
            observer.finished(outcomes)

    def running(self, claims: Iterable[Claim]) -> None:
        for observer in self.observers:
            observer.running(claims)

    def recovered(self, requeued: int, failed: int) -> None:
        for observer in self.observers:
            observer.recovered(requeued, failed)

    def loop_blocked(self, task_name: str) -> None:
        for observer in self.observers:
            observer.loop_blocked(task_name)


def combine(*observers: Any) -> Any:
    """``None`` for none (the worker then spends nothing), the one, or ``Observers``."""
    present = [o for o in observers if o is not None]
    if not present:
        return None
    return present[0] if len(present) == 1 else Observers(*present)


def log_enqueued() -> None:
    """Log this process's enqueues too (a receiver of ``task_enqueued``; idempotent)."""
    from django.tasks.signals import task_enqueued

    task_enqueued.connect(_on_enqueued, dispatch_uid="vtasks.tasklog.enqueued")


def _on_enqueued(sender: Any, task_result: Any, **kwargs: Any) -> None:
    task = task_result.task
    _emit("enqueued", task_result.id, task.module_path, task.queue_name, None)
