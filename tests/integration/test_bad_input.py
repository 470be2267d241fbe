"""Bad input (issue #8): refused at enqueue with a clear error; a bad message or a misbehaving task
fails alone, and the worker goes on to the next task."""

from __future__ import annotations

import pytest
from django.tasks import task_backends

from tests import bad_tasks, storage, tasks
from tests.helpers import lines, spawn_worker, work
from vtasks.core.errors import PayloadTooLarge
from vtasks.wire import envelope


# -- enqueue ---------------------------------------------------------------------------------
def test_the_payload_cap_defaults_to_one_mebibyte(alias):
    assert task_backends[alias].max_payload == 1024 * 1024


def test_oversized_arguments_are_refused_at_enqueue_naming_the_size(
    alias, monkeypatch, settings_override
):
    monkeypatch.setenv("VTASKS_MAX_PAYLOAD_BYTES", "1000")
    settings_override(alias)  # a fresh backend instance reads the cap
    task = tasks.echo.using(backend=alias)
    with pytest.raises(PayloadTooLarge, match=r"encode to 1006 bytes, over the 1000-byte cap"):
        task.enqueue("x" * 1000)  # ["x...x"] and {}: 1004 + 2 bytes
    with pytest.raises(PayloadTooLarge, match="VTASKS_MAX_PAYLOAD_BYTES"):
        task.enqueue(blob="é" * 600)  # counted in encoded bytes, not characters
    with pytest.raises(PayloadTooLarge):
        task_backends[alias].enqueue_many([(task, ("small",), {}), (task, ("x" * 2000,), {})])
    assert storage.count(alias) == 0  # nothing written, not even the small call before it
    assert task.enqueue("x" * 990) is not None


def test_a_bad_payload_cap_setting_is_a_config_error(alias, monkeypatch, settings_override):
    from vtasks.core.errors import ConfigError

    monkeypatch.setenv("VTASKS_MAX_PAYLOAD_BYTES", "lots")
    with pytest.raises(ConfigError, match="VTASKS_MAX_PAYLOAD_BYTES: must be a whole number"):
        settings_override(alias)
        task_backends[alias]


# -- bad messages in storage -----------------------------------------------------------------
def test_garbage_in_a_valkey_message_fails_that_task_and_the_worker_goes_on(valkey_alias):
    alias = valkey_alias
    first = tasks.add.using(backend=alias).enqueue(1, 2)
    garbage = tasks.add.using(backend=alias).enqueue(3, 4)
    far_future = tasks.add.using(backend=alias).enqueue(5, 6)
    last = tasks.add.using(backend=alias).enqueue(7, 8)
    client, _ = storage._valkey()
    client.hset(storage._task_key(garbage.id), "msg", b"\x01\x00\xff\xfe not json \x00")
    body = envelope.decode(client.hget(storage._task_key(far_future.id), "msg"))
    body["enqueued_at"] = 10**19  # past the year 9999
    client.hset(storage._task_key(far_future.id), "msg", envelope.encode(body))
    worker = work(alias)
    assert worker.processed == 4
    rows = {r["id"]: r for r in storage.records(alias)}
    assert rows[first.id]["status"] == rows[last.id]["status"] == "SUCCESSFUL"
    assert rows[far_future.id]["status"] == "SUCCESSFUL"  # the time is unreadable, the call is not
    assert rows[garbage.id]["status"] == "FAILED" and rows[garbage.id]["claimed_by"] is None
    assert "EnvelopeError" in rows[garbage.id]["errors"]
    assert "message body is not JSON" in rows[garbage.id]["errors"]


def test_a_message_naming_os_system_is_refused_and_never_called(alias, tmp_path):
    marker = tmp_path / "pwned"
    result = tasks.echo.using(backend=alias).enqueue(f"touch {marker}")
    storage.update(alias, result.id, task_path="os.system")
    after = tasks.add.using(backend=alias).enqueue(1, 1)
    work(alias)
    row = storage.record(alias, result.id)
    assert row is not None and row["status"] == "FAILED" and not marker.exists()
    assert "UnknownTask" in row["errors"] and "not a function declared with @task" in row["errors"]
    assert storage.status(alias, after.id) == "SUCCESSFUL"


def test_a_message_naming_an_unknown_backend_fails_instead_of_looping(alias):
    orphan = tasks.add.using(backend=alias).enqueue(1, 1)
    storage.update(alias, orphan.id, backend="removed-alias")
    after = tasks.add.using(backend=alias).enqueue(2, 2)
    worker = work(alias, timeout=30)  # it used to hand the claim back and claim it again, forever
    assert worker.processed == 2
    row = storage.record(alias, orphan.id)
    assert row is not None and row["status"] == "FAILED" and row["claimed_by"] is None
    assert "'removed-alias', which is not a TASKS alias" in row["errors"]
    assert storage.status(alias, after.id) == "SUCCESSFUL"


@pytest.fixture
def valkey_alias():
    from tests.conftest import storage_for

    yield from storage_for("valkey")


# -- tasks that raise what naive workers do not catch ----------------------------------------
def test_base_exceptions_cancelled_error_and_del_do_not_kill_a_real_worker(alias, tmp_path):
    out = tmp_path / "out"
    calls = {
        "base": bad_tasks.raise_base_exception, "async_base": bad_tasks.async_raise_base_exception,
        "exit": bad_tasks.raise_system_exit, "del": bad_tasks.raise_from_del,
        "cancelled": bad_tasks.async_raise_cancelled,
    }  # fmt: skip
    results = {name: task.using(backend=alias).enqueue() for name, task in calls.items()}
    tasks.record.using(backend=alias).enqueue(str(out), "after")
    worker = spawn_worker(alias, "--burst", "--concurrency", "1", log=tmp_path / "worker.log")
    assert worker.wait(timeout=90) == 0, (tmp_path / "worker.log").read_text()[-3000:]
    assert lines(out) == ["after"]
    for name, path in [
        ("base", "tests.bad_tasks.Fatal"), ("async_base", "tests.bad_tasks.Fatal"),
        ("exit", "builtins.SystemExit"),
        # Raised by the task's own code, not a cancellation of the attempt: it fails like any
        # error (re-raised, the worker took it for its shutdown and left the task RUNNING).
        ("cancelled", "asyncio.exceptions.CancelledError"),
    ]:  # fmt: skip
        results[name].refresh()
        assert results[name].status == "FAILED", name
        assert storage.record(alias, results[name].id)["claimed_by"] is None
        assert [e.exception_class_path for e in results[name].errors] == [path]
    results["del"].refresh()
    assert results["del"].status == "SUCCESSFUL" and results["del"].return_value == "survived"
    assert "raised from __del__" in (tmp_path / "worker.log").read_text()  # reported, not fatal
