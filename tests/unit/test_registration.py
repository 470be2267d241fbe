"""The supervisor's process-table row over a fake async driver: register, beat, close, remove."""

from __future__ import annotations

import asyncio
import os

from vtasks.drivers.base import ProcessInfo
from vtasks.runtime.registration import SupervisorRow


class FakeDriver:
    """Records calls; ``rows`` is the process table, shared by every driver a test builds."""

    def __init__(self, rows: dict[str, ProcessInfo], log: list[str], *, fail: bool = False) -> None:
        self.rows, self.log, self.fail = rows, log, fail
        self.hang = False

    async def open(self) -> None:
        self.log.append("open")
        if self.fail:
            raise ConnectionRefusedError("database down")

    async def close(self) -> None:
        self.log.append("close")

    async def register(self, info: ProcessInfo) -> None:
        self.log.append("register")
        self.rows[info.id] = info

    async def heartbeat(self, process_id: str) -> bool:
        self.log.append("heartbeat")
        if self.hang:
            await asyncio.sleep(60)
        return process_id in self.rows

    async def deregister(self, process_id: str) -> None:
        self.log.append("deregister")
        self.rows.pop(process_id, None)


def make(fail: bool = False) -> tuple[SupervisorRow, dict[str, ProcessInfo], list[str]]:
    rows: dict[str, ProcessInfo] = {}
    log: list[str] = []
    return SupervisorRow(lambda: FakeDriver(rows, log, fail=fail), timeout=0.2), rows, log


def test_registers_then_beats_and_registers_again_once_pruned():
    row, rows, log = make()
    row.beat()
    row.beat()
    [info] = rows.values()
    assert info.kind == "supervisor" and info.pid == os.getpid() and ":supervisor:" in info.id
    rows.clear()  # pruned by a live process
    row.beat()
    assert list(rows) == [info.id]
    assert log == ["open", "register", "heartbeat", "heartbeat", "register"]
    row.close()


def test_close_drops_the_connection_and_the_next_beat_reopens_it():
    row, rows, log = make()
    row.beat()
    row.close()
    row.close()  # idempotent
    row.beat()
    assert log == ["open", "register", "close", "open", "heartbeat"]
    row.remove()
    assert rows == {} and log[-2:] == ["deregister", "close"]


def test_a_failing_backend_is_logged_once_and_never_raises(caplog):
    row, rows, log = make(fail=True)
    row.beat()
    row.beat()
    assert rows == {} and log == ["open", "close", "open", "close"]
    assert caplog.text.count("cannot keep the supervisor's process-table row") == 1
    row.remove()  # never registered: nothing to remove


def test_a_hanging_call_is_bounded_by_the_timeout():
    row, rows, log = make()
    row.beat()
    assert row._driver is not None
    row._driver.hang = True  # type: ignore[attr-defined]
    row.beat()  # returns after 0.2 s, not 60
    assert log[-2:] == ["heartbeat", "close"] and row._driver is None
