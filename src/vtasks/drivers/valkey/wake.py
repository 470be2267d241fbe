"""Blocking waits on the queues' wake lists (and, for hand-off, the worker's inboxes).

A single server pops all of a worker's wake lists with one BLPOP. A cluster cannot (each queue's
list sits in its own slot, and a multi-key BLPOP across slots is refused), so there each queue gets
its own BLPOP and the first token wins. Pops run as tasks of their own that outlive the wait that
started them: the worker cancels its wait whenever a slot frees, and cancelling a pop mid-flight
would cost its connection; a pop still in flight is picked up again by the next wait.

On a single server, once the driver has registered its process, a pop also registers the process
as idle on its queues (``idle.lua``, in the same round trip) and watches its inboxes first: an
enqueue may then hand it a claimed message (``handoff.py``), which goes to ``on_handed`` as soon
as the pop returns, whoever waits. Such a pop is never cancelled (its reply may carry a claim): when
its queues stop being asked for, it is left to end by itself, and hand-off stops for good. It goes
through an ``AsyncExchange`` of its own, not a valkey-py pipeline: the pop's reply is the start of
an idle worker's pickup, and the pipeline's checkout, per-read timeouts and reply callbacks cost
about a quarter of the pickup's CPU time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from vtasks.drivers.valkey.exchange import AsyncExchange
from vtasks.drivers.valkey.handoff import IDLE_GRACE, Handed
from vtasks.drivers.valkey.keys import queue_keys
from vtasks.drivers.valkey.scripts import SCRIPTS, WAKE_CAP, Call

logger = logging.getLogger("vtasks.valkey")

Group = tuple[str, ...]


class WakeListener:
    def __init__(
        self, client: Callable[[], Any], prefix: str, blocking_timeout: float, cluster: bool,
        on_handed: Callable[[str, bytes], None] | None = None,
    ) -> None:  # fmt: skip
        self._client = client
        self.prefix = prefix
        self.blocking_timeout = blocking_timeout
        self.cluster = cluster
        self._on_handed = on_handed
        self._pops: dict[Group, asyncio.Task[Any]] = {}
        self._listening = True
        #: The process hand-offs go to (``None``: no hand-off, only wake tokens).
        self.process_id: str | None = None
        #: Queues whose idle sets may hold this process (what ``leave`` must undo).
        self.registered: set[str] = set()
        self._groups_seen: set[Group] = set()
        #: Pops that watch inboxes: their replies may be claims, so they are never cancelled.
        self._handing: set[asyncio.Task[Any]] = set()
        #: Their connections (made on the first such pop; closed by ``close``).
        self._handing_lane: AsyncExchange | None = None

    def _groups(self, queues: Sequence[str]) -> list[Group]:
        if self.cluster:
            return [(queue,) for queue in dict.fromkeys(queues)]
        return [tuple(queues)] if queues else []

    def _hands_off(self, group: Group) -> bool:
        if self.process_id is None or self.cluster or self._on_handed is None:
            return False
        self._groups_seen.add(group)
        return len(self._groups_seen) == 1

    def _start(self, groups: list[Group]) -> None:
        for group in list(self._pops):
            if group not in groups:
                # Other queues: stop it, or it would take the next token of a shared queue.
                self._drop(group)
        for group in groups:
            if group not in self._pops:
                pop = asyncio.ensure_future(self._blpop(group, self._hands_off(group)))
                self._pops[group] = pop

    def _drop(self, group: Group) -> None:
        pop = self._pops.pop(group)
        pop.add_done_callback(_ignore_outcome)
        if pop not in self._handing:  # a hand-off pop ends by itself (see the module docstring)
            pop.cancel()

    async def wait(self, queues: Sequence[str], timeout: float) -> None:
        """Return when a wake token arrives or after ``timeout``; a connection problem sleeps."""
        if timeout <= 0:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        groups = self._groups(queues)
        if not groups:  # nothing to listen to: the whole timeout
            await asyncio.sleep(timeout)
            return
        while (remaining := deadline - loop.time()) > 0:
            self._start(groups)
            done, _ = await asyncio.wait(
                set(self._pops.values()), timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                return
            woken, failure = False, None
            for group, pop in list(self._pops.items()):
                if pop in done:
                    del self._pops[group]
                    if pop.cancelled() or pop.exception() is not None:
                        failure = pop.exception() if not pop.cancelled() else None
                    elif pop.result() is not None:
                        woken = True
            if failure is not None:
                if self._listening:  # Log each outage once, not on every idle poll.
                    logger.warning(
                        "vtasks: blocking pop failed (%s); polling until it is back", failure
                    )
                self._listening = False
                await asyncio.sleep(max(0.0, deadline - loop.time()))
                return
            self._listening = True
            if woken:
                return

    async def _blpop(self, group: Group, hands_off: bool) -> Any:
        client = self._client()
        wake = [queue_keys(self.prefix, queue).wake for queue in group]
        if not hands_off or self.process_id is None:
            return await client.blpop(wake, timeout=self.blocking_timeout)
        me = asyncio.current_task()
        assert me is not None
        self._handing.add(me)
        try:
            return await self._blpop_handing(client, group, wake, self.process_id)
        finally:
            self._handing.discard(me)

    async def _blpop_handing(self, client: Any, group: Group, wake: list[str], pid: str) -> Any:
        keys = [queue_keys(self.prefix, queue) for queue in group]
        self.registered.update(group)
        ttl_ms = int((self.blocking_timeout + IDLE_GRACE) * 1000)
        lane = self._handing_lane
        if lane is None:  # the pop blocks up to blocking_timeout: its deadline comes after
            lane = self._handing_lane = AsyncExchange(client, timeout=self.blocking_timeout + 1.0)
        idle = SCRIPTS["idle"].text  # EVAL, not EVALSHA: the pop after it cannot wait for a retry
        inboxes = [k.inbox(pid) for k in keys]
        replies = await lane.exchange([
            ("EVAL", idle, len(keys), *(k.idle for k in keys), pid, ttl_ms),
            ("BLPOP", *inboxes, *wake, self.blocking_timeout),
        ])  # fmt: skip
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        popped = replies[1]
        if popped is not None:
            key = popped[0].decode()
            for k in keys:
                if key == k.inbox(pid):
                    if popped[1] and self._on_handed is not None:  # b"": leave()'s own wake-up
                        self._on_handed(k.queue, popped[1])
                    break
        return popped

    async def leave(
        self, client: Any, handed: Handed, run: Callable[[list[Call]], Awaitable[Any]]
    ) -> None:
        """Stop taking hand-offs, and put back to READY (uncounted) what was handed to this
        process and never started: leave the idle sets, wake our own pops with an empty item,
        let them end, then ``reclaim.lua`` each queue's inbox with the claims ``handed`` holds."""
        process_id, queues = self.process_id, sorted(self.registered)
        self.process_id = None
        if process_id is None or not (queues or handed):
            return
        try:
            pipe = client.pipeline(transaction=False)
            for queue in queues:
                k = queue_keys(self.prefix, queue)
                pipe.zrem(k.idle, process_id)
                pipe.rpush(k.inbox(process_id), b"")
                pipe.pexpire(k.inbox(process_id), 60_000)
            await pipe.execute()
            pending = [pop for pop in self._handing if not pop.done()]
            if pending:
                await asyncio.wait(pending, timeout=self.blocking_timeout + 1.0)
            calls = []
            for queue in sorted(set(queues) | handed.queues()):
                k = queue_keys(self.prefix, queue)
                calls.append(Call(
                    SCRIPTS["reclaim"], (k.ready, k.running, k.wake, k.idle, k.inbox(process_id)),
                    (k.task_prefix, process_id, WAKE_CAP, *handed.pop_ids(queue)),
                ))  # fmt: skip
            await run(calls)
            self.registered.clear()
        except Exception:
            # What stays RUNNING under this process is recovered once it is gone (counted).
            logger.exception("vtasks: could not hand back the messages handed to this process")

    async def close(self) -> None:
        pops = list(self._pops.values()) + list(self._handing)
        for group in list(self._pops):
            self._drop(group)
        for pop in pops:
            pop.cancel()
        await asyncio.gather(*pops, return_exceptions=True)
        lane, self._handing_lane = self._handing_lane, None
        if lane is not None:
            await lane.aclose()


def _ignore_outcome(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()
