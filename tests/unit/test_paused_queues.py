"""The SQL drivers' view of the paused queues: re-read at most once per ``refresh`` seconds."""

from __future__ import annotations

from vtasks.drivers.paused import PausedQueues


def test_the_view_is_stale_after_refresh_seconds_and_filters_in_order():
    now = [0.0]
    paused = PausedQueues(refresh=1.0, clock=lambda: now[0])
    assert paused.stale()
    paused.update(["b"])
    assert not paused.stale()
    assert paused.serve(["a", "b", "c"]) == ["a", "c"]
    now[0] = 0.99
    assert not paused.stale()
    now[0] = 1.0
    assert paused.stale()


def test_a_failed_read_keeps_the_last_view_until_the_next_refresh():
    now = [0.0]
    paused = PausedQueues(refresh=1.0, clock=lambda: now[0])
    paused.update(["a"])
    now[0] = 2.0
    paused.failed(RuntimeError("no such table: vtasks_paused_queue"))
    assert not paused.stale() and paused.serve(["a", "b"]) == ["b"]


def test_nothing_paused_costs_no_copy():
    queues = ("a", "b")
    assert PausedQueues().serve(queues) is queues
