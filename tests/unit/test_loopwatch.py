"""The event-loop watch: a blocked loop is reported once per episode, with its culprit and stack."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from tests.unit.test_metrics import claim
from vtasks.config import env, loader, sources
from vtasks.core.errors import ConfigError
from vtasks.runtime import loopwatch
from vtasks.runtime.loopwatch import LoopWatch
from vtasks.runtime.topology import child_specs


def hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)


def events(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "vtasks", {}).get("event") == event]


def watch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "vtasks-loopwatch"]


class Counted:
    def __init__(self) -> None:
        self.blocked: list[str] = []

    def loop_blocked(self, task_name: str) -> None:
        self.blocked.append(task_name)


def test_a_blocked_loop_is_reported_once_with_its_duration_and_stack(caplog):
    caplog.set_level(logging.WARNING, logger="vtasks.worker")

    async def main() -> LoopWatch:
        watch = LoopWatch(0.2)
        watch.start()
        try:
            await asyncio.sleep(0.1)
            hold_the_loop(0.6)
            await asyncio.sleep(0.2)  # the thread sees the loop run again
        finally:
            watch.stop()
        return watch

    watch = asyncio.run(main())
    assert watch.episodes == 1
    [warning] = events(caplog, "loop_blocked")
    assert warning.levelno == logging.WARNING and warning.name == "vtasks.worker"
    assert 0.2 <= warning.vtasks["blocked"] < 0.6  # type: ignore[attr-defined]
    message = warning.getMessage()
    assert "blocked for 0." in message and "asyncio task" in message and "main" in message
    assert "in hold_the_loop" in message and "time.sleep(seconds)" in message  # the stack
    [back] = events(caplog, "loop_unblocked")
    assert 0.6 <= back.vtasks["blocked"] < 1.5  # type: ignore[attr-defined]
    assert "runs again after" in back.getMessage()


def test_an_idle_or_busy_but_yielding_loop_is_not_reported(caplog):
    caplog.set_level(logging.WARNING, logger="vtasks.worker")

    async def main() -> LoopWatch:
        watch = LoopWatch(0.2)
        watch.start()
        try:
            await asyncio.sleep(0.4)
            for _ in range(40):  # short blocks, each well under the threshold
                hold_the_loop(0.01)
                await asyncio.sleep(0)
        finally:
            watch.stop()
        return watch

    assert asyncio.run(main()).episodes == 0
    assert not events(caplog, "loop_blocked") and not events(caplog, "loop_unblocked")


def test_the_report_names_the_claim_the_blocking_task_runs_and_counts_it(caplog):
    caplog.set_level(logging.WARNING, logger="vtasks.worker")
    counted = Counted()
    running: dict[asyncio.Task[None], object] = {}
    job = claim("app.tasks.crunch")

    async def crunch() -> None:
        await asyncio.sleep(0.05)
        hold_the_loop(0.4)

    async def main() -> None:
        unwatch = loopwatch.watch(0.1, running, counted)  # type: ignore[arg-type]
        try:
            task = asyncio.create_task(crunch())
            running[task] = job
            idle = asyncio.create_task(asyncio.sleep(1))
            running[idle] = claim("app.tasks.waits")
            await task
            idle.cancel()
        finally:
            unwatch()

    asyncio.run(main())
    [warning] = events(caplog, "loop_blocked")
    assert warning.vtasks["task_id"] == job.id  # type: ignore[attr-defined]
    assert warning.vtasks["task_name"] == "app.tasks.crunch"  # type: ignore[attr-defined]
    message = warning.getMessage()
    assert f"task app.tasks.crunch (id {job.id})" in message and "1 other task(s)" in message
    assert "in crunch" in message
    assert counted.blocked == ["app.tasks.crunch"]
    assert "app.tasks.crunch" in events(caplog, "loop_unblocked")[0].getMessage()


def test_stop_joins_the_thread():
    async def main() -> LoopWatch:
        watch = LoopWatch(0.2)
        watch.start()
        assert watch_threads()
        watch.stop()
        return watch

    watch = asyncio.run(main())
    assert watch._thread is not None and not watch._thread.is_alive()
    assert not watch_threads()


def test_the_workers_of_one_loop_share_one_watch_and_zero_turns_it_off():
    async def main() -> None:
        assert loopwatch.watch(0, {})() is None and not watch_threads()
        first = loopwatch.watch(0.2, {})
        second = loopwatch.watch(0.2, {})
        assert len(watch_threads()) == 1
        first()
        assert len(watch_threads()) == 1
        second()
        assert not watch_threads()
        assert not loopwatch._watches

    asyncio.run(main())


def test_the_threshold_comes_from_the_topology_or_the_environment():
    def workers(*layers: sources.Layer) -> list[float]:
        topology = loader.load([sources.defaults(), *layers]).topology
        return [s.worker.loop_block_threshold for s in child_specs(topology) if s.kind == "worker"]

    assert workers() == [1.0]
    yaml_layer = sources.Layer(name="yaml", values={"loop_block_threshold": 0.25})
    assert workers(yaml_layer) == [0.25]
    environ = {"VTASKS_LOOP_BLOCK_THRESHOLD": "0"}
    assert workers(yaml_layer, sources.environment(environ)) == [0.0]  # 0: not watched
    with pytest.raises(ConfigError, match="loop_block_threshold"):
        workers(sources.environment({"VTASKS_LOOP_BLOCK_THRESHOLD": "-1"}))
    assert env.runtime_value(env.LOOP_BLOCK_THRESHOLD, None, environ={}) == 1.0
    assert env.runtime_value(env.LOOP_BLOCK_THRESHOLD, None, environ={**environ}) == 0.0
