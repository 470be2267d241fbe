"""Queue selectors in a worker's queue list (dj_queue's): ``"*"`` is every queue, ``"email*"`` every
queue whose name starts with ``email``. Pure: the runtime resolves them against the store's known
queues (``Driver.known_queues``) every few seconds, never per claim.

Order across the list wins, as for plain names; the queues one selector matches are claimed
together, highest priority first. A queue named literally anywhere in the list is served at that
place only, never through a selector.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

WILDCARD = "*"


def is_selector(entry: str) -> bool:
    return entry.endswith(WILDCARD)


def selector_problem(entry: str) -> str | None:
    """Why ``entry`` is neither a queue name nor a selector (``None``: it is fine)."""
    if WILDCARD in entry[:-1]:
        return (
            f"'*' may only end a queue selector (\"*\" for every queue, or a prefix such as "
            f'"email*"), got {entry!r}'
        )
    return None


def has_selectors(entries: Iterable[str]) -> bool:
    return any(is_selector(entry) for entry in entries)


@dataclass(frozen=True, slots=True)
class Step:
    """Queues claimed in one go: in the listed order, or (``by_priority``) as one pool of tasks,
    highest priority first across them."""

    queues: tuple[str, ...]
    by_priority: bool = False


def resolve(
    entries: Sequence[str], known: Iterable[str], exclude: Iterable[str] = ()
) -> tuple[Step, ...]:
    """The claim plan for ``entries`` given the ``known`` queue names (sorted within a selector);
    ``exclude``: queues served elsewhere (batch queues). Runs of plain names share one step."""
    excluded = set(exclude)
    taken = excluded | {entry for entry in entries if not is_selector(entry)}
    names = sorted(set(known))
    steps: list[Step] = []
    for entry in entries:
        if is_selector(entry):
            prefix = entry[:-1]
            found = tuple(q for q in names if q.startswith(prefix) and q not in taken)
            taken.update(found)
            grouped = len(found) > 1
        else:
            found, grouped = (entry,) if entry not in excluded else (), False
        if not found:
            continue
        if not grouped and steps and not steps[-1].by_priority:
            steps[-1] = Step(steps[-1].queues + found)
        else:
            steps.append(Step(found, grouped))
    return tuple(steps)


def flatten(steps: Sequence[Step]) -> list[str]:
    return [queue for step in steps for queue in step.queues]
