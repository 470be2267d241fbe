"""After a sync task, a worker thread closes its old database connections only if it has any."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connections

from vtasks import execution


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
    monkeypatch.setattr(execution, "close_old_connections", lambda: calls.append("closed"))
    _in_a_new_thread(execution._close_old_connections)
    assert calls == []


def test_a_thread_that_connected_runs_djangos_cleanup(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(execution, "close_old_connections", lambda: calls.append("closed"))

    def use_the_database() -> None:
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT 1")
            execution._close_old_connections()
            execution._close_old_connections()
        finally:
            connections["default"].close()

    _in_a_new_thread(use_the_database)
    assert calls == ["closed", "closed"]
