"""``ThreadRunner``: blocking calls on as few threads as keep them moving, results back in batches.

``loop.run_in_executor`` costs a ``concurrent.futures.Future``, a chained asyncio future and one
self-pipe write per call. Here a finished call is appended to a list and the loop is woken once per
batch, which matters when thousands of short sync tasks finish per second.

Threads are added only when calls starve. Under the GIL, ten threads taking turns at ten short
calls are slower than one thread running them in a row: every turn is a GIL hand-over between the
threads and the event loop (measured: 10,000 no-op sync tasks at concurrency 10 took 2.3 s on ten
threads, 1.1 s on one). So a submitted call wakes a thread only when none is taking calls. While
calls wait, the runner looks every ``starved_after`` seconds. The busy threads are doubled (up to
``size`` and to the number of waiting calls) when the process used less than ``SATURATED`` of a
CPU over the last two looks (its threads are blocked, in I/O or a sleep; a single look may catch
a woken thread still waiting for a CPU, which takes up to a millisecond on a virtual machine), or
when no call finished for ``STALLED_AFTER`` (long calls hold the threads). Otherwise the process
is running Python flat out and another thread would only queue for the GIL, so a long queue of
short calls stays on the threads it has (measured: 20,000 sync no-op tasks at concurrency 100 ran
7,600/s steady when their queue woke all 100 threads, 12,500/s on one). Blocking calls still get
``size`` threads, within a few milliseconds. Threads are daemons: a call abandoned at its timeout
never keeps the process alive.
"""

from __future__ import annotations

import _thread
import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

#: Seconds between looks at calls waiting behind busy threads.
STARVED_AFTER = 0.001
#: CPU seconds per second at and above which the process is running flat out.
SATURATED = 0.8
#: Seconds without a finished call after which the busy threads count as held by long calls,
#: however busy the CPU (four of the interpreter's default GIL switch intervals).
STALLED_AFTER = 0.02
#: The longest ``submit(..., hand_over=True)`` blocks its loop for a thread to take the call.
HAND_OVER_WAIT = 0.001

#: Called on the loop with a call's future once it is resolved (see ``ThreadRunner.submit``).
Then = Callable[[asyncio.Future[Any]], None] | None
_Call = tuple[asyncio.Future[Any], Callable[..., Any], tuple[Any, ...], Then]


class ThreadRunner:
    def __init__(
        self, size: int, name: str = "vtasks-task", starved_after: float = STARVED_AFTER
    ) -> None:
        self.size = max(1, size)
        self.name = name
        self.starved_after = starved_after
        self._calls: deque[_Call] = deque()
        self._threads: list[threading.Thread] = []
        #: The wake-up of each thread waiting for calls, the most recently idle last (warm first):
        #: a plain lock used as a binary semaphore (held while its thread runs; the thread blocks
        #: acquiring it again, a release wakes it). ``threading.Semaphore`` does the same through
        #: a Python-level condition variable, several times the cost per wake.
        self._sleepers: list[_thread.LockType] = []
        #: Threads taking calls: running one, or woken to take the next.
        self._active = 0
        self._check_armed = False
        self._finished = 0  # calls finished so far
        self._last_look: tuple[float, float] = (0.0, 0.0)  # (CPU time, clock)
        self._last_progress: tuple[int, float] = (0, 0.0)  # (calls finished, clock)
        self._unsaturated_looks = 0  # looks in a row that found the CPU partly idle
        self._stopping = False
        self._done: list[tuple[asyncio.Future[Any], Any, BaseException | None, Then]] = []
        self._lock = threading.Lock()
        self._wake_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None
        #: A hand-over waits for a thread to take its call (see ``submit``): the flag is set
        #: under ``_lock``; the thread that clears it releases ``_taken`` (held otherwise).
        self._handing_over = False
        self._taken = _thread.allocate_lock()
        self._taken.acquire()

    def submit(
        self, fn: Callable[..., Any], *args: Any, hand_over: bool = False, then: Then = None
    ) -> asyncio.Future[Any]:
        """Run ``fn(*args)`` on a thread; the returned future resolves on the calling loop.

        ``then(future)`` runs right after the future resolves (not when it is cancelled), in the
        same loop callback that delivers the batch: a done callback would cost a partial, a
        handle and a turn of the loop per call (measured: ~3 µs a call against ~0.1 µs).

        ``hand_over`` (the worker had nothing else running): when this call wakes a thread, block
        until that thread has taken it (at most ``HAND_OVER_WAIT``), the GIL released. Otherwise
        the woken thread waits for the GIL until the loop blocks on its next round trip, which
        is all the Python the loop runs after a pick-up (measured: an idle worker's task began
        0.21 ms after its hand-off to the thread pool, 0.09 ms with the hand-over).
        """
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        future = loop.create_future()
        arm = handing = False
        with self._lock:
            self._calls.append((future, fn, args, then))
            if self._active == 0:
                self._wake(1)
                handing = self._handing_over = hand_over
            else:
                arm, self._check_armed = not self._check_armed, True
                if arm:
                    now = time.monotonic()
                    self._last_look = (time.process_time(), now)
                    self._last_progress = (self._finished, now)
                    self._unsaturated_looks = 0
        if arm:
            loop.call_later(self.starved_after, self._relieve)
        elif handing:
            self._hand_over()
        return future

    def _hand_over(self) -> None:
        if self._taken.acquire(timeout=HAND_OVER_WAIT):
            return
        with self._lock:
            pending, self._handing_over = self._handing_over, False
        if not pending:  # taken meanwhile: its thread releases ``_taken`` next
            self._taken.acquire()

    def _relieve(self) -> None:
        """Wake more threads for the queued calls if the busy ones are blocked or stalled, and
        look again while calls wait (see the module's docstring)."""
        cpu, now = time.process_time(), time.monotonic()
        with self._lock:
            self._check_armed = False
            waiting = len(self._calls)
            if not waiting or self._stopping:
                return
            cpu_then, then = self._last_look
            idle = cpu - cpu_then < SATURATED * (now - then)
            self._unsaturated_looks = self._unsaturated_looks + 1 if idle else 0
            if self._finished != self._last_progress[0]:
                self._last_progress = (self._finished, now)
            stalled = now - self._last_progress[1] >= STALLED_AFTER
            if stalled or self._unsaturated_looks >= 2:
                # Doubling: blocking calls reach ``size`` threads in a few looks, while a false
                # alarm (a thread still waiting for a CPU) costs one thread, not one per call.
                self._wake(min(waiting, self.size - self._active, max(1, self._active)))
                self._unsaturated_looks = 0
                self._last_progress = (self._finished, now)
            if self._active >= self.size:
                return
            self._check_armed = True
            self._last_look = (cpu, now)
        assert self._loop is not None
        self._loop.call_later(self.starved_after, self._relieve)

    def _wake(self, count: int) -> None:
        """Wake ``count`` idle threads, starting new ones where none is idle (lock held)."""
        for _ in range(count):
            if self._sleepers:
                self._sleepers.pop().release()
            elif len(self._threads) < self.size:
                self._spawn()
            else:
                return
            self._active += 1

    def shutdown(self, wait: bool = True) -> None:
        """Stop the threads once the queued calls are taken (``wait``: join them)."""
        with self._lock:
            self._stopping = True
            sleepers, self._sleepers = self._sleepers, []
            self._active += len(sleepers)  # woken to find no call: each leaves as it counts out
        for sleeper in sleepers:
            sleeper.release()
        if wait:
            for thread in self._threads:
                thread.join()
        self._threads = []

    def _spawn(self) -> None:
        wake = _thread.allocate_lock()  # unlocked: the new thread takes calls at once
        thread = threading.Thread(
            target=self._serve, args=(wake,), name=f"{self.name}-{len(self._threads)}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _serve(self, wake: _thread.LockType) -> None:
        while True:
            wake.acquire()
            while True:
                with self._lock:
                    if not self._calls:
                        self._active -= 1
                        if self._stopping:
                            return
                        self._sleepers.append(wake)
                        break
                    future, fn, args, then = self._calls.popleft()
                    took, self._handing_over = self._handing_over, False
                if took:
                    self._taken.release()
                if not self._run(future, fn, args, then):
                    return

    def _run(
        self, future: asyncio.Future[Any], fn: Callable[..., Any], args: tuple[Any, ...], then: Then
    ) -> bool:
        """One call, its result handed to the loop; ``False`` once the loop is closed."""
        result, error = None, None
        try:
            result = fn(*args)
        except BaseException as exc:  # handed to the awaiting coroutine
            error = exc
        with self._lock:
            self._finished += 1
            self._done.append((future, result, error, then))
            wake, self._wake_pending = not self._wake_pending, True
        if wake:
            assert self._loop is not None
            try:
                self._loop.call_soon_threadsafe(self._deliver)
            except RuntimeError:  # The loop is closed: nobody is waiting any more.
                with self._lock:
                    self._active -= 1
                return False
        return True

    def _deliver(self) -> None:
        with self._lock:
            done, self._done = self._done, []
            self._wake_pending = False
        for future, result, error, then in done:
            if future.cancelled():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)
            if then is not None:
                try:
                    then(future)
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:  # as the loop treats a callback's: the rest go on
                    assert self._loop is not None
                    self._loop.call_exception_handler(
                        {"message": "vtasks: a thread call's continuation failed",
                         "exception": exc, "future": future}
                    )  # fmt: skip
