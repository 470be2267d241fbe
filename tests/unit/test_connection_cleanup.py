"""After a sync task, a worker thread closes its old database connections only if it has any."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connections

from vtasks import task_threads


def _in_a_new_thread(fn: Any) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:  # reported to the test's thread
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(10)
    if errors:
        raise errors[0]


def test_a_thread_that_never_connected_skips_djangos_cleanup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(task_threads, "close_old_connections", lambda: calls.append("closed"))
    _in_a_new_thread(task_threads.close_connections_if_used)
    assert calls == []


def test_a_thread_that_connected_runs_djangos_cleanup(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(task_threads, "close_old_connections", lambda: calls.append("closed"))

    def use_the_database() -> None:
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT 1")
            task_threads.close_connections_if_used()
            task_threads.close_connections_if_used()
        finally:
            connections["default"].close()

    _in_a_new_thread(use_the_database)
    assert calls == ["closed", "closed"]
