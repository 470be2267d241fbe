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
