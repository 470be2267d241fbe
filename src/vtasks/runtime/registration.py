"""The supervisor's own process-table row, kept through the same driver its children use.

The supervisor is synchronous and forks: it runs each driver call to completion on a private event
loop, and ``close()`` (called before every fork) drops the loop and the driver's connections, so
nothing crosses ``fork()``; the next ``beat()`` opens them again. Every call is bounded by
``timeout``, and a failure is logged, never raised: a database outage must not stop the supervisor
from reaping and restarting its children.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from vtasks.drivers.base import Driver, ProcessInfo
from vtasks.runtime.identity import process_id

logger = logging.getLogger("vtasks.supervisor")

T = TypeVar("T")


class SupervisorRow:
    """``beat()`` registers the row (again, if it was pruned) or refreshes its heartbeat."""

    def __init__(
        self,
        open_driver: Callable[[], Driver],
        *,
        prefix: str | None = None,
        timeout: float = 2.0,
    ) -> None:
        base = prefix or f"{socket.gethostname()}:{os.getpid()}"
        self.info = ProcessInfo(
            id=process_id(f"{base}:supervisor"), kind="supervisor",
            hostname=socket.gethostname(), pid=os.getpid(),
        )  # fmt: skip
        self.open_driver = open_driver
        self.timeout = timeout
        self.registered = False
        self.last_beat: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._driver: Driver | None = None
        self._failing = False

    def beat(self) -> None:
        try:
            driver = self._open()
            alive = self.registered and self._run(driver.heartbeat(self.info.id))
            if not alive:
                if self.registered:
                    logger.warning("vtasks: the supervisor's row was pruned; registering again")
                self._run(driver.register(self.info))
                self.registered = True
        except Exception as exc:
            if not self._failing:
                logger.error("vtasks: cannot keep the supervisor's process-table row: %r", exc)
            self._failing = True
            self.close()
        else:
            self.last_beat = time.time()
            if self._failing:
                logger.info("vtasks: the supervisor's process-table row is kept again")
            self._failing = False

    def remove(self) -> None:
        """Deregister (the supervisor is exiting) and close."""
        if self.registered:
            try:
                self._run(self._open().deregister(self.info.id))
                self.registered = False
            except Exception as exc:
                logger.warning("vtasks: cannot remove the supervisor's row: %r", exc)
        self.close()

    def close(self) -> None:
        """Close the driver and the loop (before a fork); idempotent."""
        loop, driver = self._loop, self._driver
        self._loop = self._driver = None
        if loop is None:
            return
        try:
            if driver is not None:
                loop.run_until_complete(asyncio.wait_for(driver.close(), self.timeout))
        except Exception as exc:
            logger.warning("vtasks: closing the supervisor's driver failed: %r", exc)
        finally:
            # Joined, not abandoned: a resolver thread of the default executor must not be running
            # when the supervisor forks.
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    def _open(self) -> Driver:
        if self._driver is not None:
            return self._driver
        self._loop = asyncio.new_event_loop()
        # Kept before open() succeeds: a half-open driver is closed like an open one.
        driver = self._driver = self.open_driver()
        self._run(driver.open())
        return driver

    def _run(self, step: Awaitable[T]) -> T:
        assert self._loop is not None
        return self._loop.run_until_complete(asyncio.wait_for(step, self.timeout))
