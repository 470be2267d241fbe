"""``ThreadRunner``: blocking calls on a fixed set of threads, results back to the loop in batches.

``loop.run_in_executor`` costs a ``concurrent.futures.Future``, a chained asyncio future and one
self-pipe write per call. Here a finished call is appended to a list and the loop is woken once per
batch, which matters when thousands of short sync tasks finish per second. Threads are daemons: a
call abandoned at its timeout never keeps the process alive.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any

_STOP = object()


class ThreadRunner:
    def __init__(self, size: int, name: str = "vtasks-task") -> None:
        self.size = max(1, size)
        self.name = name
        self._calls: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._done: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        self._lock = threading.Lock()
        self._wake_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None
        #: One permit per thread waiting for a call. A thread starts only when no permit is left,
        #: so short calls share a few threads instead of waking ``size`` of them in turn.
        self._idle = threading.Semaphore(0)

    def submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """Run ``fn(*args)`` on a thread; the returned future resolves on the calling loop."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        future = loop.create_future()
        self._calls.put((future, fn, args))
        if not self._idle.acquire(blocking=False) and len(self._threads) < self.size:
            self._spawn()
        return future

    def shutdown(self, wait: bool = True) -> None:
        """Stop the threads once their current call returns (``wait``: join them)."""
        for _ in self._threads:
            self._calls.put(_STOP)
        if wait:
            for thread in self._threads:
                thread.join()
        self._threads = []

    def _spawn(self) -> None:
        thread = threading.Thread(
            target=self._serve, name=f"{self.name}-{len(self._threads)}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _serve(self) -> None:
        while (item := self._calls.get()) is not _STOP:
            future, fn, args = item
            result, error = None, None
            try:
                result = fn(*args)
            except BaseException as exc:  # handed to the awaiting coroutine
                error = exc
            # Idle from here on (before the result is out): a call submitted in answer to this
            # result finds this thread instead of starting another.
            self._idle.release()
            with self._lock:
                self._done.append((future, result, error))
                wake, self._wake_pending = not self._wake_pending, True
            if wake:
                assert self._loop is not None
                try:
                    self._loop.call_soon_threadsafe(self._deliver)
                except RuntimeError:  # The loop is closed: nobody is waiting any more.
                    return

    def _deliver(self) -> None:
        with self._lock:
            done, self._done = self._done, []
            self._wake_pending = False
        for future, result, error in done:
            if future.cancelled():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)
