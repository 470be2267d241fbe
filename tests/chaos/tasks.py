"""Tasks the chaos runs enqueue: each leaves lines in files, so a run can be counted afterwards.

Lines are written with one ``os.write`` on an ``O_APPEND`` descriptor: atomic for lines this short,
whichever process writes them, and nothing is buffered that a kill -9 could lose half of.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path

from django.tasks.base import TaskContext

from vtasks import task

#: The files of a run directory: one line per attempt started, one per attempt that got to its end.
STARTS = "starts"
DONE = "done"
#: Mutex runs: a marker per running attempt, and one line per overlap seen.
ACTIVE = "active"
OVERLAPS = "overlaps"
MUTEX_DONE = "mutex-done"


def append(path: Path, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


@task(max_attempts=20)
def step(directory: str, token: str, seconds: float) -> None:
    """One unit of chaos work: a start line, ``seconds`` of work, a done line."""
    pid = os.getpid()
    append(Path(directory) / STARTS, f"{token} {pid}\n")
    time.sleep(seconds)
    append(Path(directory) / DONE, f"{token} {pid}\n")


@task(unique=True, unique_key="chaos-mutex", priority=100, max_attempts=20)
def exclusive(directory: str, token: str, seconds: float) -> None:
    """A mutex task: notes every other live attempt it sees while it runs (there must be none)."""
    active = Path(directory) / ACTIVE
    active.mkdir(exist_ok=True)
    pid = os.getpid()
    mine = active / f"{pid}-{uuid.uuid4().hex}"
    mine.touch()  # first mark, then look: two attempts starting together both see each other
    try:
        for _ in range(2):
            others = [p.name for p in active.iterdir() if p != mine and alive(p.name)]
            if others:
                append(Path(directory) / OVERLAPS, f"{token} {pid} {' '.join(others)}\n")
            time.sleep(seconds / 2)
    finally:
        mine.unlink()
    append(Path(directory) / MUTEX_DONE, f"{token} {pid}\n")


def alive(marker: str) -> bool:
    """Whether the process that left ``marker`` still runs (a killed one's marker stays behind)."""
    try:
        stat = Path(f"/proc/{marker.split('-')[0]}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


# -- the soak's mix (tests/chaos/test_soak.py) ---------------------------------------------------
@task
def noop() -> None:
    """Nothing: the worker's own cost per task."""


@task
def payload(blob: str) -> int:
    """Carries a few KB in and a digest out, so arguments and results cross the store."""
    return sum(blob.encode()) % 65521


@task(takes_context=True, max_attempts=2)
def flaky(context: TaskContext, fail_attempts: int) -> int:
    """Raises on its first ``fail_attempts`` attempts: 1 succeeds on the retry, 2 ends FAILED."""
    if context.attempt <= fail_attempts:
        raise RuntimeError(f"soak: designed failure on attempt {context.attempt}")
    return context.attempt


@task
async def pause() -> None:
    """An async task: one trip through the event loop."""
    await asyncio.sleep(0)
