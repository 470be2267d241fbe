"""Signals are skipped only when nobody could notice: Django's log receivers alone, level off."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from django.tasks.signals import task_enqueued, task_finished, task_started

from vtasks.backends.receivers import wanted
from vtasks.backends.valkey import ValkeyBackend


@pytest.fixture
def tasks_logger() -> Iterator[logging.Logger]:
    logger = logging.getLogger("django.tasks")
    level = logger.level
    yield logger
    logger.setLevel(level)


def test_djangos_log_receivers_alone_are_skipped_when_their_level_is_off(tasks_logger):
    tasks_logger.setLevel(logging.WARNING)
    assert not wanted(task_started, ValkeyBackend)
    assert not wanted(task_finished, ValkeyBackend)
    assert not wanted(task_enqueued, ValkeyBackend)
    assert wanted(task_finished, ValkeyBackend, failed=True)  # logged at ERROR
    tasks_logger.setLevel(logging.INFO)
    assert wanted(task_started, ValkeyBackend) and wanted(task_finished, ValkeyBackend)
    assert not wanted(task_enqueued, ValkeyBackend)  # DEBUG
    tasks_logger.setLevel(logging.DEBUG)
    assert wanted(task_enqueued, ValkeyBackend)


def test_any_other_receiver_is_always_sent_to(tasks_logger):
    tasks_logger.setLevel(logging.CRITICAL)
    seen = []

    def receiver(sender, task_result, **kwargs):
        seen.append(task_result)

    task_started.connect(receiver, sender=ValkeyBackend)
    try:
        assert wanted(task_started, ValkeyBackend)
    finally:
        task_started.disconnect(receiver, sender=ValkeyBackend)
    assert not wanted(task_started, ValkeyBackend)


def test_a_sync_attempt_builds_its_task_result_only_for_whoever_sees_it(tasks_logger, monkeypatch):
    """The worker's plain sync attempt gets no ``TaskResult`` up front: one is built for a signal
    that is sent, the task's context or a failure, and never for a success nobody observes."""
    import dataclasses

    from django.tasks import task_backends

    from tests import tasks
    from tests.helpers import noop_claim
    from vtasks import execution

    built: list[str] = []
    real = execution._running_result

    def counting(task, claim):
        built.append(claim.task_path.rsplit(".", 1)[1])
        return real(task, claim)

    monkeypatch.setattr(execution, "_running_result", counting)
    backend = task_backends["default"]

    def attempt(task, *args):
        claim = dataclasses.replace(noop_claim("c"), task_path=task.module_path, args=list(args))
        return execution._attempt_in_thread(task, backend, claim, None, None)

    tasks_logger.setLevel(logging.WARNING)
    ok = attempt(tasks.add, 1, 2)
    assert ok.status == "SUCCESSFUL" and ok.return_value == "3" and built == []
    assert attempt(tasks.with_context, 5).status == "SUCCESSFUL" and built == ["with_context"]
    failed = attempt(tasks.fail, "no")
    assert failed.status == "FAILED" and failed.error is not None and built[-1] == "fail"
    seen = []

    def receiver(sender, task_result, **kwargs):
        seen.append((task_result.status, task_result.return_value))

    task_finished.connect(receiver, sender=type(backend))
    try:
        assert attempt(tasks.add, 2, 2).status == "SUCCESSFUL"
    finally:
        task_finished.disconnect(receiver, sender=type(backend))
    assert built[-1] == "add" and seen == [("SUCCESSFUL", 4)]
