"""Queue selectors in a real worker, on every store: ``"email*"`` serves every queue starting with
``email`` (by priority across them) before the queues listed after it; ``"*"`` serves them all."""

from __future__ import annotations

from tests import storage, tasks
from tests.helpers import lines, work


def test_a_selector_serves_its_queues_by_priority_before_the_next_entry(alias, tmp_path):
    out = tmp_path / "order"
    record = tasks.record.using(backend=alias)
    record.using(queue_name="default").enqueue(str(out), "default")
    record.using(queue_name="email.a", priority=0).enqueue(str(out), "a-low")
    record.using(queue_name="email.b", priority=50).enqueue(str(out), "b-high")
    record.using(queue_name="email.a", priority=100).enqueue(str(out), "a-top")
    other = record.using(queue_name="other").enqueue(str(out), "other")
    worker = work(alias, ["email*", "default"], concurrency=1)
    assert worker.processed == 4
    assert lines(out) == ["a-top", "b-high", "a-low", "default"]
    assert storage.status(alias, other.id) == "READY"


def test_every_queue(alias, tmp_path):
    out = tmp_path / "all"
    record = tasks.record.using(backend=alias)
    for queue in ("x", "y.z", "default"):
        record.using(queue_name=queue).enqueue(str(out), queue)
    assert work(alias, ["*"]).processed == 3
    assert sorted(lines(out)) == ["default", "x", "y.z"]
