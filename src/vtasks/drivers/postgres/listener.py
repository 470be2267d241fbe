"""The wake-up path: one LISTEN connection outside the pool, opened on first use.

It only makes idle workers react faster; polling stays the correctness path, so every problem here
ends in "sleep until the timeout" for the caller, and the connection is rebuilt on the next wait.
"""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from vtasks.drivers.postgres.queries import QUERIES


class Listener:
    """Waits for a NOTIFY on channel ``vtasks`` (sent by the trigger on ``vtasks_task`` inserts)."""

    def __init__(self, conninfo: str) -> None:
        self._conninfo = conninfo
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock: asyncio.Lock | None = None

    async def wait(self, timeout: float) -> bool:
        """``True`` when a notification arrived within ``timeout`` seconds; raises on errors.

        The deadline covers connecting too, so a server that does not answer cannot stall a worker.
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        try:
            async with asyncio.timeout(timeout), self._lock:
                conn = await self._connection()
                # stop_after=1 ends the generator by itself (a ``break`` would keep it, and the
                # connection's lock, alive); notifications that came in the same packet go too.
                async for _ in conn.notifies(stop_after=1):
                    pass
                return True
        except TimeoutError:
            return False

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is not None and not self._conn.closed:
            return self._conn
        self._conn = None
        conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        try:
            await conn.execute(QUERIES["listen"])
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        return conn
