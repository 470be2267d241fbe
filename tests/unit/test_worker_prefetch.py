"""The worker's adaptive prefetch: held claims only as deep as recent finishes justify."""

from __future__ import annotations

import time
from typing import Any

from vtasks.runtime.worker import Worker, WorkerSettings


def _worker(**settings: Any) -> Worker:
    return Worker(driver=None, executor=None, settings=WorkerSettings(**settings), process_id="p")  # type: ignore[arg-type]


async def test_no_prefetch_until_tasks_finish_then_as_deep_as_recent_finishes():
    worker = _worker(concurrency=10, prefetch=50, prefetch_window=0.2)
    assert worker._room() == 10  # nothing finished yet: the free slots only
    now = time.monotonic()
    worker._finishes.extend([now] * 30)
    assert worker._room() == 10 + 30
    worker._finishes.extend([now] * 40)
    assert worker._room() == 10 + 50  # capped
    worker._buffer.extend([object()] * 20)  # type: ignore[list-item]
    assert worker._room() == 10 + 30


async def test_old_finishes_stop_counting_and_prefetch_can_be_off():
    worker = _worker(concurrency=4, prefetch=50, prefetch_window=0.05)
    worker._finishes.extend([time.monotonic() - 1.0] * 30)
    assert worker._room() == 4
    assert not worker._finishes  # trimmed
    off = _worker(concurrency=4, prefetch=0)
    off._finishes.extend([time.monotonic()] * 30)
    assert off._room() == 4


async def test_the_default_cap_is_the_concurrency_and_at_least_100():
    now = time.monotonic()
    wide = _worker(concurrency=1000)
    wide._finishes.extend([now] * 1500)
    assert wide._room() == 1000 + 1000
    narrow = _worker(concurrency=10)
    narrow._finishes.extend([now] * 1500)
    assert narrow._room() == 10 + 100
