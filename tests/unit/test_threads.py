import asyncio
import threading

import pytest

from vtasks.runtime.threads import ThreadRunner


async def test_results_and_errors_come_back_to_the_loop():
    runner = ThreadRunner(4)
    try:
        results = await asyncio.gather(*(runner.submit(lambda i=i: i * i) for i in range(200)))
        assert results == [i * i for i in range(200)]
        with pytest.raises(ZeroDivisionError):
            await runner.submit(lambda: 1 / 0)
        assert len(runner._threads) == 4
    finally:
        runner.shutdown()
    assert runner._threads == []


async def test_calls_run_off_the_loop_thread_and_keyboard_interrupt_is_delivered():
    runner = ThreadRunner(1)
    try:
        name = await runner.submit(lambda: threading.current_thread().name)
        assert name.startswith("vtasks-task") and name != threading.current_thread().name

        def interrupt():
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            await runner.submit(interrupt)
    finally:
        runner.shutdown()


async def test_an_abandoned_call_does_not_block_shutdown_without_wait():
    runner = ThreadRunner(1)
    release = threading.Event()
    future = runner.submit(release.wait)
    future.cancel()
    runner.shutdown(wait=False)
    release.set()


async def test_blocking_calls_get_a_thread_each_up_to_the_size():
    runner = ThreadRunner(8)
    barrier = threading.Barrier(8, timeout=5)
    try:
        # Every call waits for the other seven: this only returns if eight run at once.
        await asyncio.gather(*(runner.submit(barrier.wait) for _ in range(8)))
        assert len(runner._threads) == 8
    finally:
        runner.shutdown()


async def test_short_calls_in_turn_reuse_one_idle_thread():
    runner = ThreadRunner(50)
    try:
        for i in range(100):
            assert await runner.submit(lambda i=i: i) == i
        assert len(runner._threads) == 1
    finally:
        runner.shutdown()
