"""The asyncio worker: claim up to free capacity, run, record outcomes in batches (``recorder``),
heartbeat and recover the dead (``liveness``). While one claim or finish round trip is in flight,
the next batch collects. Polling stays the correctness path; ``wait_for_work`` only speeds it up.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections import deque
from datetime import datetime
from typing import Any

from vtasks.core import selectors
from vtasks.drivers.base import Claim, Driver, Outcome, ProcessInfo
from vtasks.runtime import exitcodes
from vtasks.runtime.admission import HeldSlots, admit_claims, limited
from vtasks.runtime.batch_loop import BatchLoop
from vtasks.runtime.liveness import keep_alive
from vtasks.runtime.loopwatch import watch
from vtasks.runtime.recorder import OutcomeRecorder
from vtasks.runtime.selection import QueuePlan
from vtasks.runtime.stranded import release_stranded
from vtasks.runtime.worker_settings import Executor, Observer, WorkerSettings

logger = logging.getLogger("vtasks.worker")


class Worker:
    def __init__(
        self, driver: Driver, executor: Executor, settings: WorkerSettings, process_id: str,
        observer: Observer | None = None,
    ) -> None:  # fmt: skip
        self.driver = driver
        #: ``None`` when metrics are off: then nothing at all is spent on them.
        self.observer = observer
        self.executor = executor
        self.settings = settings
        self.process_id = process_id
        self.processed = 0
        #: Claims returned unfinished at shutdown (a sync one may still hold a thread).
        self.handed_back = 0
        #: The attempts holding a slot: an asyncio task, or a thread's future (``Executor.start``).
        self._running: dict[asyncio.Future[Any], Claim] = {}
        #: Claimed, not started yet (see ``WorkerSettings.prefetch``).
        self._buffer: deque[Claim] = deque()
        #: Monotonic times of recent finishes, for the adaptive prefetch depth.
        self._finishes: deque[float] = deque()
        #: The claim whose task ``_start_task`` is running the first step of (see there).
        self._first_step: Claim | None = None
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._fenced_out = False
        self._slots = HeldSlots(driver, process_id)
        self.recorder = OutcomeRecorder(
            driver, process_id, self._slots, self._release_slots, observer, self._running.values
        )
        #: Queues of claims that failed in flight: the store may hold claims for us there.
        self._claims_unsure: set[str] = set()
        #: Claims of the claim loop whose admission failed (the store was down): tried again.
        self._unadmitted: list[Claim] = []

    def stop(self) -> None:
        """Stop claiming and drain (safe to call from a signal handler set with add_signal_handler)."""
        self._stopping.set()
        self._slot_freed.set()

    async def run(self) -> int:
        """Run until stopped (or, with ``burst``, until the queues are empty); returns an exit code."""
        info = ProcessInfo(
            id=self.process_id, kind="worker", hostname=socket.gethostname(), pid=os.getpid(),
            queues=list(self.settings.queues), meta={"concurrency": self.settings.concurrency},
        )  # fmt: skip
        await self.driver.register(info)
        if hasattr(self.driver, "on_handed"):  # a driver that hands off (Valkey)
            self.driver.on_handed = self._offer
        flusher = asyncio.create_task(
            self.recorder.loop(lambda: self._stopping.is_set() and not self._running)
        )
        heart = asyncio.create_task(keep_alive(self))
        batched = {q: b for q, b in self.settings.batch_queues.items() if q in self.settings.queues}
        batchers = [asyncio.create_task(BatchLoop(self, q, b).run()) for q, b in batched.items()]
        entries = [q for q in self.settings.queues if q not in batched]
        plan, resolver = None, None
        if selectors.has_selectors(entries):
            plan = QueuePlan(entries, exclude=batched)
            await plan.refresh(self.driver)
            resolver = asyncio.create_task(self._refresh_loop(plan))
            batchers.append(resolver)  # cancelled and awaited with them
        unwatch = watch(
            self.settings.loop_block_threshold, self._running, self.observer,
            lambda: self._first_step,
        )  # fmt: skip
        try:
            await self._claim_loop(entries, plan)
            await self._drain_batches([b for b in batchers if b is not resolver])
            await self._drain()
        finally:
            unwatch()
            for batcher in batchers:
                batcher.cancel()
            await asyncio.gather(*batchers, return_exceptions=True)
            heart.cancel()
            self.recorder.wanted.set()
            self._stopping.set()
            await asyncio.gather(heart, return_exceptions=True)
            await flusher
            if not self._fenced_out:
                await self.driver.deregister(self.process_id)
        return exitcodes.FENCED if self._fenced_out else exitcodes.OK

    # -- claiming ------------------------------------------------------------------------------
    async def _claim_loop(self, queues: list[str], plan: QueuePlan | None = None) -> None:
        """Claim from ``queues``, or with selectors from what ``plan`` resolves to now."""
        if plan is None and not queues:  # every queue is a batch queue: their loops do the work
            if not self.settings.burst:
                await self._stopping.wait()
            return
        failures = 0
        while not self._stopping.is_set():
            if plan is not None:
                queues = plan.serving
            room = self._room()
            try:
                if room <= 0:
                    claims = []
                elif plan is None:
                    claims = await self.driver.claim(queues, room, self.process_id)
                else:
                    claims = await plan.claim(self.driver, room, self.process_id)
            except Exception:
                # The database went away: keep running tasks, retry with capped back-off. The
                # store may have claimed for us before the reply was lost: look once it answers.
                failures += 1
                self._claims_unsure.update(q for q in queues if q not in self.settings.batch_queues)
                logger.exception("vtasks: claim failed (%d in a row); retrying", failures)
                await self._pause(min(5.0, 0.1 * 2**failures))
                continue
            failures = 0
            if claims and self.observer is not None:
                self.observer.claimed(claims)
            if self._unadmitted or (claims and limited(claims)):
                claims = await admit_claims(self, claims, self._unadmitted)
            self._buffer.extend(claims)
            self._fill()
            if self._claims_unsure:
                await release_stranded(self)
            if claims and len(claims) < room:
                # Maybe more arrived meanwhile; the next claim returns [] when not. One loop turn
                # first lets the tasks just started reach their thread or first await before
                # the claim is built and sent (measured: a handed task started 0.14 ms later).
                await asyncio.sleep(0)
                continue
            if room - len(claims) <= 0:
                await self._wait_for_slot()
                continue
            if (
                self.settings.burst and not self._running and not self._buffer
                and await self._queues_empty(queues)
            ):  # fmt: skip
                return
            await self._idle(queues)

    async def _refresh_loop(self, plan: QueuePlan) -> None:
        while True:
            await asyncio.sleep(self.settings.selector_refresh)
            await plan.refresh(self.driver)

    def _room(self) -> int:
        """How many claims to take now: the free slots plus the prefetch buffer's free depth."""
        free = self.settings.concurrency - len(self._running)
        cap = self.settings.prefetch_cap
        if cap > 0:
            horizon = time.monotonic() - self.settings.prefetch_window
            finishes = self._finishes
            while finishes and finishes[0] < horizon:
                finishes.popleft()
            free += max(0, min(cap, len(finishes)) - len(self._buffer))
        return free

    def _offer(self, claim: Claim) -> bool:
        """Start a claim the driver got without a claim call (a hand-off) if a slot is free and
        nothing claimed waits before it; ``False``: the next claim returns it instead (a batch
        queue's claim goes to its batch loop that way)."""
        if (
            self._stopping.is_set() or self._buffer or self._unadmitted or limited([claim])
            or len(self._running) >= self.settings.concurrency
            or claim.queue_name in self.settings.batch_queues
        ):  # fmt: skip
            return False
        if self.observer is not None:
            self.observer.claimed([claim])
        self._start(claim)
        return True

    def _fill(self) -> None:
        """Start held claims while slots are free."""
        while self._buffer and len(self._running) < self.settings.concurrency:
            self._start(self._buffer.popleft())

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    async def _wait_for_slot(self) -> None:
        """Wait for a free slot, then linger briefly so the next claim takes a batch.

        Short tasks free their slots in bursts: claiming at the first freed slot would cost a round
        trip per task. A long task's slot waits at most ``claim_linger`` seconds for company.
        """
        self._slot_freed.clear()
        await self._slot_freed.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.claim_linger
        wanted = max(1, self.settings.concurrency // 2)
        while self._room() < wanted and not self._stopping.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._slot_freed.clear()
            try:
                await asyncio.wait_for(self._slot_freed.wait(), remaining)
            except TimeoutError:
                return

    async def _idle(self, queues: list[str]) -> None:
        """Sleep until work may be there: a notification, a due time, a freed slot or the poll."""
        timeout = self.settings.idle_wait
        if not queues:  # selectors that match nothing yet
            await self._pause(timeout)
            return
        try:
            due = await self.driver.next_due(queues)
        except Exception:
            logger.exception("vtasks: could not read the next due time; polling")
            due = None
        if due is not None:
            timeout = max(0.0, min(timeout, (due - datetime.now(due.tzinfo)).total_seconds()))
        if timeout <= 0:
            return
        self._slot_freed.clear()
        await self._wait_for_work_or(self._slot_freed, queues, timeout)

    async def _queues_empty(self, queues: list[str]) -> bool:
        await self.recorder.flush()
        return not self._running and not self._buffer and await self.driver.next_due(queues) is None

    # -- running -------------------------------------------------------------------------------
    def _start(self, claim: Claim) -> None:
        # Idle until now: nothing else needs the loop, so the task's thread goes first.
        started = self.executor.start(claim, hand_over=not self._running, then=self._ended)
        if started is None:
            self._start_task(claim)
            return
        self._running[started] = claim

    def _start_task(self, claim: Claim) -> None:
        """Run ``claim`` in an asyncio task whose first step runs now, inside this call.

        Started the usual way, the task's first step would wait its turn behind every callback
        already due: when a wave of sleeping tasks wakes together, each slot's next task would
        begin (and arm its own timer) only after the whole wave was handled, and the wave's
        handling time would add up over the waves (50 ms sleeps at concurrency 100: ~1.9 ms a
        wave, 1,910 instead of 1,955 tasks/s). A claim started from within such a first step
        (its task ended without awaiting, and its slot went to the next one) takes the usual
        way: tasks that never await cannot recurse through the buffer.
        """
        if self._first_step is not None:
            self._running[asyncio.create_task(self._execute(claim))] = claim
            return
        self._first_step = claim
        try:
            loop = asyncio.get_running_loop()
            job = asyncio.Task(self._execute(claim), loop=loop, eager_start=True)
        finally:
            self._first_step = None
        if not job.done():  # done: it ran to its end already, and freed its slot
            self._running[job] = claim

    def _ended(self, started: asyncio.Future[Outcome]) -> None:
        """An attempt ``Executor.start`` began has ended: as ``_execute`` goes on after ``run``.
        (Never called for a cancelled one: that is the shutdown, and ``_drain`` hands it back.)"""
        if started.exception() is not None:
            # Rare: ``_execute`` hands it back, then frees the slot; its task takes the place.
            claim = self._running.pop(started)
            self._running[asyncio.create_task(self._execute(claim, started))] = claim
            return
        self._freed(started)
        self._record(started.result())

    async def _execute(self, claim: Claim, started: asyncio.Future[Outcome] | None = None) -> None:
        """Run ``claim`` to its outcome (``started``: an attempt begun by ``Executor.start``)."""
        try:
            outcome = await (self.executor.run(claim) if started is None else started)
        except asyncio.CancelledError:
            return  # Shutdown: _drain hands it back.
        except KeyboardInterrupt:
            # Django's contract: KeyboardInterrupt in a task is a shutdown, not a failure.
            self.stop()
            await self._hand_back([claim])
            return
        except Exception:
            logger.exception("vtasks: executor failed on task %s; handing it back", claim.id)
            await self._hand_back([claim])
            return
        finally:
            self._freed(asyncio.current_task())
        self._record(outcome)

    def _freed(self, job: asyncio.Future[Any] | None) -> None:
        """``job`` holds its slot no more: start the next held claim in it."""
        self._running.pop(job, None)  # type: ignore[arg-type]
        self._finishes.append(time.monotonic())
        if self._buffer and not self._stopping.is_set():
            self._start(self._buffer.popleft())
        self._slot_freed.set()

    def _record(self, outcome: Outcome) -> None:
        self.recorder.add(outcome)
        self.processed += 1

    async def _drain(self) -> None:
        """Wait for running tasks up to the shutdown timeout, then hand back the rest."""
        if self._running:
            await asyncio.wait(list(self._running), timeout=self.settings.shutdown_timeout)
        leftover = [claim for job, claim in self._running.items() if not job.done()]
        leftover += self._buffer  # claimed, never started
        leftover += self._unadmitted
        self._buffer.clear()
        self._unadmitted.clear()
        for job in list(self._running):
            job.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        self._running.clear()
        await self.recorder.flush()
        if leftover and not self._fenced_out:
            logger.warning("vtasks: handing back %d unfinished task(s)", len(leftover))
            self.handed_back += len(leftover)
            await self._hand_back(leftover)

    # -- batch queues --------------------------------------------------------------------------
    async def _wait_for_work_or(
        self, event: asyncio.Event, queues: list[str], timeout: float
    ) -> None:
        """Until the driver reports work in ``queues``, ``event`` is set, or ``timeout`` passes."""
        if timeout <= 0:
            return
        driver_wait = asyncio.create_task(self.driver.wait_for_work(queues, timeout))
        event_wait = asyncio.create_task(event.wait())
        await asyncio.wait(
            (driver_wait, event_wait), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        event_wait.cancel()  # nothing to clean up: not awaited (a loop turn less before a claim)
        if not driver_wait.done():
            driver_wait.cancel()
            await asyncio.gather(driver_wait, return_exceptions=True)

    async def _drain_batches(self, batchers: list[asyncio.Task[None]]) -> None:
        """Burst: let the batch loops empty their queues. Stopping: give the batch being run the
        shutdown timeout, then cancel (its messages are handed back)."""
        if not batchers:
            return
        if self.settings.burst and not self._stopping.is_set():
            await asyncio.wait(batchers)
            return
        _, pending = await asyncio.wait(batchers, timeout=self.settings.shutdown_timeout)
        for batcher in pending:
            batcher.cancel()
        await asyncio.gather(*batchers, return_exceptions=True)

    async def _release_slots(self) -> None:
        if await self._slots.release():
            self._slot_freed.set()  # deferred claims are due now: an idle claim loop takes them

    async def _hand_back(self, claims: list[Claim]) -> None:
        await self.driver.hand_back(claims, self.process_id)
        if self._slots.held:
            self._slots.release_later(claims)
            await self._release_slots()
