"""Blocking waits on the queues' wake lists, for the worker's idle time.

A single server pops all of a worker's wake lists with one BLPOP. A cluster cannot (each queue's
list sits in its own slot, and a multi-key BLPOP across slots is refused), so there each queue gets
its own BLPOP and the first token wins. Pops run as tasks of their own that outlive the wait that
started them: the worker cancels its wait whenever a slot frees, and cancelling a pop mid-flight
would cost its connection; a pop still in flight is picked up again by the next wait.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from vtasks.drivers.valkey.keys import queue_keys

logger = logging.getLogger("vtasks.valkey")

Group = tuple[str, ...]


class WakeListener:
    def __init__(
        self, client: Callable[[], Any], prefix: str, blocking_timeout: float, cluster: bool
    ) -> None:
        self._client = client
        self.prefix = prefix
        self.blocking_timeout = blocking_timeout
        self.cluster = cluster
        self._pops: dict[Group, asyncio.Task[Any]] = {}
        self._listening = True

    def _groups(self, queues: Sequence[str]) -> list[Group]:
        if self.cluster:
            return [(queue,) for queue in dict.fromkeys(queues)]
        return [tuple(queues)] if queues else []

    def _start(self, groups: list[Group]) -> None:
        for group in list(self._pops):
            if group not in groups:
                # Other queues: stop it, or it would take the next token of a shared queue.
                self._drop(group)
        for group in groups:
            if group not in self._pops:
                self._pops[group] = asyncio.ensure_future(self._blpop(group))

    def _drop(self, group: Group) -> None:
        pop = self._pops.pop(group)
        pop.add_done_callback(_ignore_outcome)
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

    async def _blpop(self, group: Group) -> Any:
        wake = [queue_keys(self.prefix, queue).wake for queue in group]
        return await self._client().blpop(wake, timeout=self.blocking_timeout)

    async def close(self) -> None:
        pops = list(self._pops.values())
        for group in list(self._pops):
            self._drop(group)
        await asyncio.gather(*pops, return_exceptions=True)


def _ignore_outcome(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()
