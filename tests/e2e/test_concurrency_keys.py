"""Per-key concurrency limits across real ``vtasks worker`` processes."""

from __future__ import annotations

import collections
import signal
import time
from pathlib import Path

from django.tasks import TaskResultStatus, task_backends

from tests import storage, tasks
from tests.helpers import complete_lines, lines, spawn_worker, wait_for, work
from vtasks.wire import codec

LIMITED = "vtasks.core.errors.ConcurrencyLimited"


def events(path: Path) -> list[tuple[str, str, int]]:
    """``(start|end, key, monotonic ns)`` in the order the lines were appended."""
    rows = [line.split() for line in complete_lines(path) if line]
    return [(kind, key, int(ns)) for kind, key, ns in rows]


def assert_never_overlapping(log: list[tuple[str, str, int]]) -> None:
    """Per key: starts and ends alternate in append order, and no run begins before the
    previous one ended (appends are atomic, and the clock is one machine's monotonic clock)."""
    by_key: dict[str, list[tuple[str, int]]] = collections.defaultdict(list)
    for kind, key, ns in log:
        by_key[key].append((kind, ns))
    for key, seq in by_key.items():
        kinds = [kind for kind, _ in seq]
        assert kinds == ["start", "end"] * (len(seq) // 2), f"{key}: overlapping runs"
        times = [ns for _, ns in seq]
        assert times == sorted(times), f"{key}: a run started before the previous one ended"


def test_200_tasks_over_5_keys_with_limit_1_never_overlap_on_2_workers(alias, tmp_path):
    out = tmp_path / "log"
    task = tasks.per_account.using(backend=alias)
    task_backends[alias].enqueue_many([(task, (str(out), i % 5, 0.01), {}) for i in range(200)])
    started = time.monotonic()
    workers = [
        spawn_worker(alias, "--concurrency", "8", log=tmp_path / f"w{i}.log") for i in range(2)
    ]
    try:
        wait_for(
            lambda: sum(kind == "end" for kind, _, _ in events(out)) >= 200,
            timeout=90, what="200 runs",
        )  # fmt: skip
        elapsed = time.monotonic() - started
        wait_for(lambda: storage.count(alias, status="SUCCESSFUL") == 200, what="200 outcomes")
        wait_for(lambda: storage.held_slots(alias) == 0, what="the slots to be freed")
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        codes = [worker.wait(timeout=30) for worker in workers]
    log = events(out)
    assert len(log) == 400
    assert collections.Counter(key for kind, key, _ in log if kind == "start") == {
        f"account:{i}": 40 for i in range(5)
    }
    assert_never_overlapping(log)
    assert codes == [0, 0]
    # However often a task was deferred, it ran once: one attempt, one worker id.
    assert {(r["attempts"], len(codec.loads(r["worker_ids"]))) for r in storage.records(alias)} == {
        (1, 1)
    }
    print(f"{alias}: 200 limited tasks in {elapsed:.1f}s")


def test_discard_fails_the_newcomer_and_runs_other_keys(alias, tmp_path):
    out = tmp_path / "out"
    task = tasks.exclusive.using(backend=alias)
    first = task.enqueue(str(out), "a", 0.3)
    second = task.enqueue(str(out), "a", 0.0)
    other = task.enqueue(str(out), "b", 0.0)
    work(alias, concurrency=4)
    for result in (first, second, other):
        result.refresh()
    assert first.status == other.status == TaskResultStatus.SUCCESSFUL
    assert second.status == TaskResultStatus.FAILED
    [error] = second.errors
    assert error.exception_class_path == LIMITED
    assert "'job:a'" in error.traceback and "on_conflict='discard'" in error.traceback
    assert sorted(lines(out)) == ["a", "b"]
    assert storage.held_slots(alias) == 0


def test_blocked_tasks_run_after_the_reaper_frees_a_killed_holders_slot(alias, tmp_path):
    out = tmp_path / "log"
    task = tasks.per_account.using(backend=alias)
    holder = task.enqueue(str(out), 1, 60.0)
    victim = spawn_worker(alias, log=tmp_path / "victim.log")
    try:
        wait_for(lambda: len(events(out)) == 1, what="the victim to start the holder")
        waiting = [task.enqueue(str(out), 1, 0.0) for _ in range(3)]
        time.sleep(0.6)  # the victim claims and defers them, again and again
        assert len(events(out)) == 1
        assert {storage.status(alias, r.id) for r in waiting} <= {"READY", "RUNNING"}
    finally:
        victim.kill()
        victim.wait(timeout=10)
    rescuer = spawn_worker(alias, log=tmp_path / "rescuer.log")
    try:
        wait_for(
            lambda: all(storage.status(alias, r.id) == "SUCCESSFUL" for r in waiting),
            timeout=30, what="the blocked tasks to run",
        )  # fmt: skip
    finally:
        rescuer.send_signal(signal.SIGTERM)
        assert rescuer.wait(timeout=30) == 0
    holder.refresh()
    assert holder.status == TaskResultStatus.FAILED
    assert holder.errors[-1].exception_class_path == "vtasks.core.errors.WorkerLost"
    for result in waiting:
        result.refresh()
        assert result.attempts == 1 and result.errors == []
    assert_never_overlapping(events(out)[1:])
    assert storage.held_slots(alias) == 0
