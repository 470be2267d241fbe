"""Details of Django's task contract that its own test-suite relies on."""

from __future__ import annotations

import logging
import threading

from django.db import connections
from django.tasks import TaskResultStatus

from tests import storage, tasks
from tests.helpers import work


def test_one_run_logs_enqueued_running_and_finished(alias, caplog):
    caplog.set_level(logging.DEBUG, logger="django.tasks")
    result = tasks.add.using(backend=alias).enqueue(1, 2)
    work(alias)
    mine = [
        r.getMessage()
        for r in caplog.records
        if r.name == "django.tasks" and result.id in r.getMessage()
    ]
    assert len(mine) == 3
    assert "enqueued" in mine[0] and "state=RUNNING" in mine[1] and "state=SUCCESSFUL" in mine[2]


def test_a_failure_is_logged_with_its_traceback(alias, caplog):
    result = tasks.fail.using(backend=alias).enqueue("logged")
    work(alias)
    [record] = [
        r for r in caplog.records if r.name == "django.tasks" and "state=FAILED" in r.getMessage()
    ]
    assert record.levelno == logging.ERROR and result.id in record.getMessage()
    assert record.exc_info and isinstance(record.exc_info[1], ValueError)


def test_keyboard_interrupt_in_a_task_is_a_shutdown_not_a_failure(alias):
    result = tasks.interrupt.using(backend=alias).enqueue()
    worker = work(alias)
    assert worker.processed == 0
    result.refresh()
    assert result.status == TaskResultStatus.READY and result.errors == []


def test_concurrent_unique_enqueues_admit_exactly_one(alias):
    task = tasks.add.using(backend=alias, unique=True, unique_key="race")
    barrier = threading.Barrier(10)
    outcomes: list[object] = []

    def enqueue() -> None:
        barrier.wait()
        try:
            outcomes.append(task.enqueue(1, 1))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=enqueue) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 10
    assert sum(o is not None for o in outcomes) == 1
    assert storage.count(alias) == 1


def test_capability_flags_and_task_class(alias):
    from django.tasks import task_backends

    import vtasks

    backend = task_backends[alias]
    assert backend.supports_defer and backend.supports_async_task
    assert backend.supports_get_result and backend.supports_priority
    assert backend.task_class is vtasks.Task
    assert isinstance(tasks.add, vtasks.Task)  # django.tasks.task builds the backend's task_class
