"""Detect a blocked event loop and say which task blocked it.

An ``async def`` task that calls ``time.sleep`` or computes holds the worker's loop: heartbeats,
claims and every other async task wait, silently. The loop stamps the time every ``threshold / 4``
seconds; a thread looks as often and, once the stamp is ``threshold`` old, logs one warning per
episode (the task on the loop, how long, the loop thread's stack), then the total when it is over.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from vtasks.drivers.base import Claim

logger = logging.getLogger("vtasks.worker")

#: Innermost frames of the loop thread's stack written in the warning.
STACK_FRAMES = 8


class BlockObserver(Protocol):
    def loop_blocked(self, task_name: str) -> None:
        """One blocking episode by ``task_name`` ("" when no claim's task); from another thread."""
        ...


#: A worker's map of asyncio tasks to the claims they run, its observer, and the claim whose task
#: is running its first step inside the worker's start call (not in the map yet), if any.
Source = tuple[
    Mapping[asyncio.Future[Any], Claim], BlockObserver | None, Callable[[], Claim | None]
]


class LoopWatch:
    """Watches the loop it is started on. ``sources``: each worker's map of asyncio tasks to the
    claims they run, with its observer; read only while the loop is blocked (so unchanging)."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        self.interval = threshold / 4
        self.episodes = 0  # reported so far
        self.sources: list[Source] = []
        self._stamp = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._timer: asyncio.TimerHandle | None = None
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start watching the running loop (call on the loop's thread)."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._tick()
        self._thread = threading.Thread(target=self._watch, name="vtasks-loopwatch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the timer and the thread, and join it (call on the loop's thread)."""
        if self._timer is not None:
            self._timer.cancel()
        self._stopped.set()
        if self._thread is not None:
            self._thread.join()

    def _tick(self) -> None:
        assert self._loop is not None  # started
        self._stamp = time.monotonic()
        self._timer = self._loop.call_later(self.interval, self._tick)

    def _watch(self) -> None:
        since: float | None = None  # the last stamp before the episode being reported
        culprit = ""
        while not self._stopped.wait(self.interval):
            stamp = self._stamp
            if since is not None:
                if stamp != since:
                    self._back(culprit, stamp - since)
                    since = None
            elif time.monotonic() - stamp >= self.threshold:
                if self._loop is None or self._loop.is_closed():
                    return  # never stopped (its worker crashed): nothing left to watch
                since, culprit = stamp, self._report(time.monotonic() - stamp)
        if since is not None:  # stopped on the loop's thread: the loop runs again
            self._back(culprit, time.monotonic() - since)

    def _report(self, late: float) -> str:
        """Log the episode's warning and count it; returns what blocked the loop."""
        claim, observer, culprit = self._culprit()
        task = asyncio.current_task(self._loop)
        others = sum(len(running) - (task in running) for running, _, _ in self.sources)
        frame = sys._current_frames().get(self._loop_thread)
        stack = "".join(traceback.format_stack(frame)[-STACK_FRAMES:]).rstrip() if frame else "-"
        fields = {
            "event": "loop_blocked", "blocked": round(late, 3),
            "task_id": claim.id if claim else None, "task_name": claim.task_path if claim else None,
        }  # fmt: skip
        logger.warning(
            "vtasks: the event loop has been blocked for %.2fs by %s; %d other task(s), heartbeats "
            "and claims wait meanwhile (await, or make it a sync task). Loop thread stack, "
            "innermost last:\n%s",
            late, culprit, others, stack, extra={"vtasks": fields},
        )  # fmt: skip
        self.episodes += 1
        if observer is not None:
            try:
                observer.loop_blocked(claim.task_path if claim else "")
            except Exception:  # metrics must never stop the watch
                logger.exception("vtasks: could not count a blocked event loop")
        return culprit

    def _culprit(self) -> tuple[Claim | None, BlockObserver | None, str]:
        """The claim whose task runs on the loop now, its worker's observer, and their name."""
        task = asyncio.current_task(self._loop)
        sources = self.sources
        for running, observer, starting in sources:
            claim = running.get(task) if task is not None else None
            if claim is None and task is not None:
                claim = starting()  # the loop is inside that worker's start call
            if claim is not None:
                return claim, observer, f"task {claim.task_path} (id {claim.id})"
        observer = sources[0][1] if sources else None
        if task is None:
            return None, observer, "a callback outside any task"
        coro = getattr(task.get_coro(), "__qualname__", "?")
        return None, observer, f"asyncio task {task.get_name()} ({coro})"

    def _back(self, culprit: str, total: float) -> None:
        fields = {"event": "loop_unblocked", "blocked": round(total, 3)}
        text = "vtasks: the event loop runs again after %.2fs blocked by %s"
        logger.warning(text, total, culprit, extra={"vtasks": fields})


#: One watch per loop: the workers of a process in async mode share it (one report per block).
_watches: dict[asyncio.AbstractEventLoop, LoopWatch] = {}


def watch(
    threshold: float, running: Mapping[asyncio.Future[Any], Claim],
    observer: BlockObserver | None = None, starting: Callable[[], Claim | None] = lambda: None,
) -> Callable[[], None]:  # fmt: skip
    """Watch the running loop for ``running``'s tasks (``threshold <= 0``: not at all); while the
    loop runs no task of ``running``, ``starting()`` names the claim whose task is running its
    first step, if any. Returns the call that stops; the last one stops the loop's watch and
    joins its thread."""
    if threshold <= 0:
        return lambda: None
    loop = asyncio.get_running_loop()
    found = _watches.get(loop)
    if found is None:
        found = _watches[loop] = LoopWatch(threshold)
        found.start()
    source: Source = (running, observer, starting)
    found.sources = [*found.sources, source]  # a new list: the thread may be reading the old one

    def unwatch() -> None:
        found.sources = [s for s in found.sources if s is not source]
        if not found.sources:
            found.stop()
            _watches.pop(loop, None)

    return unwatch
