"""The asyncio worker: claim up to free capacity, run, finish in batches, heartbeat, recover the dead.

Claims and finishes batch themselves: while one round trip is in flight, the next batch collects.
Polling stays the correctness path; a driver's ``wait_for_work`` only makes it faster.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from vtasks.drivers.base import Claim, Driver, Outcome, ProcessInfo
from vtasks.runtime import exitcodes

logger = logging.getLogger("vtasks.worker")


class Executor(Protocol):
    async def run(self, claim: Claim) -> Outcome: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerSettings:
    queues: Sequence[str] = ("default",)
    concurrency: int = 10
    burst: bool = False
    heartbeat_interval: float = 5.0
    alive_threshold: float = 30.0
    shutdown_timeout: float = 30.0
    idle_wait: float = 1.0
    #: Seconds a freed slot waits for others before the next claim (see ``_wait_for_slot``).
    claim_linger: float = 0.002


class Worker:
    def __init__(
        self, driver: Driver, executor: Executor, settings: WorkerSettings, process_id: str
    ) -> None:
        self.driver = driver
        self.executor = executor
        self.settings = settings
        self.process_id = process_id
        self.processed = 0
        #: Claims returned unfinished at shutdown (a sync one may still hold a thread).
        self.handed_back = 0
        self._running: dict[asyncio.Task[None], Claim] = {}
        self._outcomes: list[Outcome] = []
        self._flush_wanted = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        # Held while a batch is being recorded: a second flusher waits for it to land.
        self._flush_lock = asyncio.Lock()
        self._fenced_out = False

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
        flusher = asyncio.create_task(self._flush_loop())
        heart = asyncio.create_task(self._heartbeat_loop())
        try:
            await self._claim_loop()
            await self._drain()
        finally:
            heart.cancel()
            self._flush_wanted.set()
            self._stopping.set()
            await asyncio.gather(heart, return_exceptions=True)
            await flusher
            if not self._fenced_out:
                await self.driver.deregister(self.process_id)
        return exitcodes.FENCED if self._fenced_out else exitcodes.OK

    # -- claiming ------------------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        queues = list(self.settings.queues)
        failures = 0
        while not self._stopping.is_set():
            free = self.settings.concurrency - len(self._running)
            try:
                claims = await self.driver.claim(queues, free, self.process_id) if free > 0 else []
            except Exception:
                # The database went away: keep running tasks, retry with capped back-off.
                failures += 1
                logger.exception("vtasks: claim failed (%d in a row); retrying", failures)
                await self._pause(min(5.0, 0.1 * 2**failures))
                continue
            failures = 0
            for claim in claims:
                self._start(claim)
            if claims and len(claims) < free:
                continue  # Maybe more arrived meanwhile; the next claim returns [] when not.
            if free - len(claims) <= 0:
                await self._wait_for_slot()
                continue
            if self.settings.burst and not self._running and await self._queues_empty(queues):
                return
            await self._idle(queues)

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
        while (
            self.settings.concurrency - len(self._running) < wanted and not self._stopping.is_set()
        ):
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
        try:
            due = await self.driver.next_due(queues)
        except Exception:
            logger.exception("vtasks: could not read the next due time; polling")
            due = None
        if due is not None:
            timeout = max(0.0, min(timeout, (due - _now(due)).total_seconds()))
        if timeout <= 0:
            return
        self._slot_freed.clear()
        waiters = [
            asyncio.create_task(self.driver.wait_for_work(queues, timeout)),
            asyncio.create_task(self._slot_freed.wait()),
        ]
        done, pending = await asyncio.wait(
            waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        for waiter in pending:
            waiter.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _queues_empty(self, queues: list[str]) -> bool:
        await self._flush_now()
        return not self._running and await self.driver.next_due(queues) is None

    # -- running -------------------------------------------------------------------------------
    def _start(self, claim: Claim) -> None:
        job = asyncio.create_task(self._execute(claim))
        self._running[job] = claim

    async def _execute(self, claim: Claim) -> None:
        try:
            outcome = await self.executor.run(claim)
        except asyncio.CancelledError:
            return  # Shutdown: _drain hands it back.
        except KeyboardInterrupt:
            # Django's contract: KeyboardInterrupt in a task is a shutdown, not a failure.
            self.stop()
            await self.driver.hand_back([claim], self.process_id)
            return
        except Exception:
            logger.exception("vtasks: executor failed on task %s; handing it back", claim.id)
            await self.driver.hand_back([claim], self.process_id)
            return
        finally:
            self._running.pop(asyncio.current_task(), None)  # type: ignore[arg-type]
            self._slot_freed.set()
        self._outcomes.append(outcome)
        self._flush_wanted.set()
        self.processed += 1

    async def _drain(self) -> None:
        """Wait for running tasks up to the shutdown timeout, then hand back the rest."""
        if self._running:
            await asyncio.wait(list(self._running), timeout=self.settings.shutdown_timeout)
        leftover = [claim for job, claim in self._running.items() if not job.done()]
        for job in list(self._running):
            job.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        self._running.clear()
        await self._flush_now()
        if leftover and not self._fenced_out:
            logger.warning("vtasks: handing back %d unfinished task(s)", len(leftover))
            self.handed_back += len(leftover)
            await self.driver.hand_back(leftover, self.process_id)

    # -- finishing -----------------------------------------------------------------------------
    async def _flush_loop(self) -> None:
        while True:
            await self._flush_wanted.wait()
            self._flush_wanted.clear()
            await self._flush_now()
            if self._stopping.is_set() and not self._running and not self._outcomes:
                return

    async def _flush_now(self) -> None:
        """Record pending outcomes; returns only once none is pending or in flight."""
        async with self._flush_lock:
            while self._outcomes:
                batch, self._outcomes = self._outcomes, []
                try:
                    refused = await self.driver.finish(batch, self.process_id)
                except Exception:
                    logger.exception("vtasks: could not record %d outcome(s); retrying", len(batch))
                    self._outcomes[:0] = batch
                    await asyncio.sleep(1.0)
                    continue
                if refused:
                    logger.warning(
                        "vtasks: %d outcome(s) refused: their claims were released", len(refused)
                    )

    # -- liveness ------------------------------------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        interval = self.settings.heartbeat_interval
        while True:
            await asyncio.sleep(interval * random.uniform(0.8, 1.0))
            try:
                if not await self.driver.heartbeat(self.process_id):
                    logger.error("vtasks: this process was pruned from the process table; stopping")
                    self._fenced_out = True
                    self.stop()
                    return
                recovered = await self.driver.recover_dead(self.settings.alive_threshold)
                if recovered.requeued or recovered.failed:
                    logger.warning(
                        "vtasks: recovered dead process(es) %s: %d requeued, %d failed",
                        recovered.processes, len(recovered.requeued), len(recovered.failed),
                    )  # fmt: skip
            except Exception:
                logger.exception("vtasks: heartbeat failed; will retry")


def _now(like: datetime) -> datetime:
    return datetime.now(like.tzinfo)
