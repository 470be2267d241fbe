"""Server connections cut mid-run: ``pg_terminate_backend`` / ``CLIENT KILL`` of every connection
the ``vtasks supervise`` tree holds, over and over, while it works through its tasks.

The servers are shared with other engineers: only the tree's own connections are cut (found by
their ports, ``tests.chaos.connections``), and no server is restarted. The workers reconnect with
back-off, no task is lost or run twice, and the supervisor stays up.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from django.db import connections as django_connections
from django.tasks import task_backends

from tests import storage
from tests.chaos import harness
from tests.chaos.connections import kill_postgres, kill_valkey, local_ports, tree
from tests.chaos.tasks import step
from tests.conftest import storage_for
from tests.helpers import wait_for

pytestmark = pytest.mark.timeout(300)

TASKS = 3000


@pytest.fixture(params=["pg", "valkey"], ids=["postgres", "valkey"])
def alias(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from storage_for(request.param)


def cut_function(alias: str) -> Callable[[set[int]], int]:
    if alias == "valkey":
        url = task_backends["valkey"].url
        return lambda ports: kill_valkey(url, ports)
    return lambda ports: kill_postgres(alias, ports)


class Cutter(threading.Thread):
    """Every 0.5-1.5 s, cut every server connection of the tree under ``root``."""

    def __init__(self, root: int, cut: Callable[[set[int]], int]) -> None:
        super().__init__(name="cutter", daemon=True)
        self.root, self.cut = root, cut
        self.rounds: list[int] = []
        self.errors: list[str] = []
        self._stop = threading.Event()

    def run(self) -> None:
        rng = random.Random(7)
        while not self._stop.wait(rng.uniform(0.5, 1.5)):
            try:
                self.rounds.append(self.cut(local_ports(tree(self.root))))
            except Exception as exc:  # reported by the test: the cutter must not die silently
                self.errors.append(repr(exc))

    def stop(self) -> None:
        self._stop.set()
        self.join(timeout=30)


def test_cut_connections_reconnect_and_lose_nothing(alias, tmp_path):
    rng = random.Random(TASKS)
    task = step.using(backend=alias)
    calls = [(task, (str(tmp_path), f"t{i}", rng.uniform(0, 0.1)), {}) for i in range(TASKS)]
    tokens = {r.id: f"t{i}" for i, r in enumerate(task_backends[alias].enqueue_many(calls))}
    config = harness.topology(tmp_path / "vtasks.yml", alias)
    django_connections.close_all()
    with harness.supervise(config, tmp_path / "supervisor.log") as sup:
        wait_for(lambda: len(harness.children_of(sup.pid)) == 4, timeout=60, what="4 children")
        first_children = set(harness.children_of(sup.pid))
        cutter = Cutter(sup.pid, cut_function(alias))
        cutter.start()
        try:
            wait_for(
                lambda: harness.done_count(tmp_path) >= TASKS or sup.poll() is not None,
                timeout=200, interval=0.5, what=f"{TASKS} tasks to run",
            )  # fmt: skip
            time.sleep(1)  # one more cut at the end, when the acks are in flight
        finally:
            cutter.stop()
        assert sup.poll() is None, "the supervisor died"
        wait_for(
            lambda: storage.count(alias, status="SUCCESSFUL") >= TASKS,
            timeout=120, interval=1.0, what="every task to be recorded",
        )  # fmt: skip
        restarted = first_children - set(harness.children_of(sup.pid))
        sup.send_signal(signal.SIGTERM)
        assert sup.wait(timeout=60) == 0
    figures = harness.tally(tmp_path, tokens, storage.records(alias), [])
    cut = sum(cutter.rounds)
    print(f"\nreconnect: {alias}: {len(cutter.rounds)} rounds, {cut} connections cut, "
          f"{len(restarted)} children replaced, {figures}")  # fmt: skip
    assert cutter.errors == [] and cut >= 5
    assert figures.problems == [] and figures.lost == 0 and figures.duplicates == 0
    log = (tmp_path / "supervisor.log").read_text()
    assert os.environ.get("VTASKS_CHAOS_ALLOW_RESTARTS") or not restarted, log[-3000:]
