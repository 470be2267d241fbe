"""A reload's rolling replacement: one slot at a time, the new child up before the old one stops.

Slots are matched by name (``pool.index``, ``scheduler``). A step starts the new child of a slot,
waits until it is up, then retires the child it replaces, so a queue never loses its workers: a
changed pool's children are replaced one by one, an added child is started (and waited for), and
the children of a removed pool (or beyond a pool's new ``processes``) are retired last, once
everything new is up. Unchanged slots are replaced too: a reload also loads new task code.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from vtasks.runtime.slot import Slot
from vtasks.runtime.topology import ChildSpec


@dataclass(slots=True)
class Step:
    """Replace ``old`` by a child of ``spec``; no ``old``: an added child; no ``spec``: removed."""

    spec: ChildSpec | None
    old: Slot | None
    new: Slot | None = None


class Rollout:
    def __init__(self, running: Sequence[Slot], specs: Sequence[ChildSpec]) -> None:
        by_name = {slot.spec.name: slot for slot in running}
        self.steps = deque(Step(spec, by_name.pop(spec.name, None)) for spec in specs)
        self.steps.extend(Step(None, slot) for slot in by_name.values())
        self.total = len(self.steps)

    @property
    def done(self) -> int:
        return self.total - len(self.steps)

    @property
    def trial(self) -> Slot | None:
        """The new child being waited for (started, not yet up)."""
        return self.steps[0].new if self.steps else None

    def advance(self, start: Callable[[ChildSpec], Slot], retire: Callable[[Slot], None]) -> bool:
        """Take every step whose new child is up, start the next one; ``True`` once all are done."""
        while self.steps:
            step = self.steps[0]
            if step.spec is not None:
                if step.new is None:
                    step.new = start(step.spec)
                if not step.new.ready:
                    return False
            if step.old is not None:
                retire(step.old)
            self.steps.popleft()
        return True

    def abandon(self) -> Slot | None:
        """Drop the remaining steps; returns the trial child, for the caller to retire."""
        trial = self.trial
        self.steps.clear()
        return trial
