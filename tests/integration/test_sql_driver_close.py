"""``SqlDriver.close`` under a caller's timeout while its thread waits on SQLite's write lock.

The supervisor reopens its driver after every failed heartbeat; when a timeout cancelled the close,
the stuck thread and its connection stayed behind, one pair per failed beat (found by the soak).
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time

import pytest

from tests.helpers import wait_for
from vtasks.drivers.base import ProcessInfo
from vtasks.drivers.sql.driver import SqlDriver


def _sql_threads() -> int:
    return sum(t.name.startswith("vtasks-sql") for t in threading.enumerate())


async def test_a_close_cut_short_by_a_timeout_still_closes_and_joins() -> None:
    rounds = 3
    path = os.environ["VTASKS_TEST_SQLITE"]
    info = ProcessInfo(id="close-test", kind="worker", hostname="h", pid=1, queues=[], meta={})
    setup = SqlDriver("default")
    await setup.open()
    await setup.register(info)
    await setup.close()
    threads = _sql_threads()
    lock = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        for _ in range(rounds):
            lock.execute("BEGIN IMMEDIATE")  # the driver's write now waits for this lock
            driver = SqlDriver("default")
            await driver.open()
            beat = asyncio.ensure_future(driver.heartbeat(info.id))
            await asyncio.sleep(0.2)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(driver.close(), 0.2)
            time.sleep(0.1)
            lock.execute("COMMIT")
            await asyncio.gather(beat, return_exceptions=True)
        # A thread ends only after the work queued on it: the close queued behind the stuck
        # heartbeat ran. (Open files are no measure here: SQLite parks the descriptor of a
        # connection closed while another of this process holds a lock on the same file.)
        wait_for(lambda: _sql_threads() == threads, timeout=15, what="the driver threads to end")
    finally:
        lock.close()
    cleanup = SqlDriver("default")
    await cleanup.open()
    await cleanup.deregister(info.id)
    await cleanup.close()
