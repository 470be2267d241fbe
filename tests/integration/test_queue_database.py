"""A dedicated queue database: the app's models on ``pg``, vtasks' tables and traffic on a second
PostgreSQL database (``pgqueue``, ``OPTIONS["database_alias"]``), with ``VTasksRouter``.

A slice of the contract runs there (enqueue, get_result, a worker running tasks, uniqueness), and
each test checks that nothing of vtasks touched ``pg``. It also pins down the documented cost:
an enqueue is not part of an app transaction on ``pg``; ``enqueue_on_commit`` is the way.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connections, router, transaction
from django.tasks import TaskResultStatus, task_backends
from django.test import override_settings

from tests import storage, tasks
from tests.helpers import work
from vtasks import enqueue_on_commit
from vtasks.models import ProcessRecord, TaskRecord, UniqueLock

QUEUE = "pgqueue"  # the database alias, and the TASKS alias whose queue lives there
APP = "pg"
ROUTER = "vtasks.routers.VTasksRouter"


@pytest.fixture
def queue_db() -> Iterator[str]:
    if QUEUE not in settings.DATABASES:
        pytest.skip("PostgreSQL is not available")
    with override_settings(TASKS={**settings.TASKS, QUEUE: _entry()}):
        storage.clear(QUEUE)
        storage.clear(APP)
        Group.objects.using(APP).filter(name__startswith="queue-db-").delete()
        yield QUEUE
    Group.objects.using(APP).filter(name__startswith="queue-db-").delete()


def _nothing_on_the_app_database() -> None:
    for model in (TaskRecord, UniqueLock, ProcessRecord):
        assert not model.objects.using(APP).exists(), model.__name__


def test_enqueue_and_get_result_use_the_queue_database(queue_db):
    result = tasks.add.using(backend=queue_db).enqueue(1, 2)
    assert task_backends[queue_db].get_result(result.id).status == TaskResultStatus.READY
    assert TaskRecord.objects.using(QUEUE).filter(id=result.id, backend=queue_db).exists()
    _nothing_on_the_app_database()


def test_a_worker_runs_tasks_from_the_queue_database(queue_db):
    results = [tasks.add.using(backend=queue_db).enqueue(n, n) for n in range(5)]
    results.append(tasks.async_add.using(backend=queue_db).enqueue(2, 3))
    worker = work(queue_db)
    assert worker.processed == 6
    for result in results:
        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL, result.errors
    assert [r.return_value for r in results] == [0, 2, 4, 6, 8, 5]
    _nothing_on_the_app_database()


def test_unique_tasks_lock_in_the_queue_database(queue_db):
    first = tasks.unique_sleep.using(backend=queue_db).enqueue("/dev/null", "u", 0)
    assert first is not None
    assert tasks.unique_sleep.using(backend=queue_db).enqueue("/dev/null", "u", 0) is None
    assert UniqueLock.objects.using(QUEUE).count() == 1
    work(queue_db)
    assert tasks.unique_sleep.using(backend=queue_db).enqueue("/dev/null", "u", 0) is not None
    _nothing_on_the_app_database()


def test_an_enqueue_is_not_part_of_an_app_transaction(queue_db):
    """The documented cost of a separate queue database: a rolled-back app transaction keeps the
    task it enqueued; ``enqueue_on_commit`` enqueues only once the app's transaction commits."""

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback), transaction.atomic(using=APP):
        Group.objects.using(APP).create(name="queue-db-rolled-back")
        kept = tasks.add.using(backend=queue_db).enqueue(1, 1)
        enqueue_on_commit(tasks.add.using(backend=queue_db), 2, 2, using=APP)
        raise Rollback
    assert not Group.objects.using(APP).filter(name="queue-db-rolled-back").exists()
    assert storage.count(QUEUE) == 1 and storage.record(QUEUE, kept.id) is not None

    with transaction.atomic(using=APP):
        Group.objects.using(APP).create(name="queue-db-committed")
        enqueue_on_commit(tasks.add.using(backend=queue_db), 3, 3, using=APP)
        assert storage.count(QUEUE) == 1  # not yet: the app transaction is still open
    assert storage.count(QUEUE) == 2


def test_migrate_vtasks_on_the_queue_database_with_the_router(queue_db):
    with override_settings(DATABASE_ROUTERS=[ROUTER], TASKS={QUEUE: _entry()}):
        call_command("migrate", "vtasks", database=QUEUE, verbosity=0)
        assert router.db_for_write(TaskRecord) == QUEUE
        assert router.db_for_read(ProcessRecord) == QUEUE
        assert router.db_for_read(Group) == "default"  # other apps: no opinion, so default
        assert router.allow_migrate_model(QUEUE, TaskRecord)
        assert not router.allow_migrate_model(APP, TaskRecord)
        assert TaskRecord.objects.count() == 0  # an unrouted query reaches the queue database
    tables = set(connections[QUEUE].introspection.table_names())
    assert {TaskRecord._meta.db_table, UniqueLock._meta.db_table} <= tables
    assert Group._meta.db_table not in tables  # only vtasks was migrated there


def _entry() -> dict[str, object]:
    return {
        "BACKEND": "vtasks.backends.database.DatabaseBackend",
        "QUEUES": [],
        "OPTIONS": {"database_alias": QUEUE},
    }
