"""The ``vtasks_`` Prometheus metrics (the ``metrics`` extra), and how each process records them.

Nothing here imports ``prometheus_client`` at module level: the module is imported only where
metrics are on (a supervisor tree with ``metrics:`` in its topology, ``--metrics-port``, an
embedded worker), and the web process never imports it (``tests/unit/test_layers.py``).

Under a supervisor, every process of the tree writes its samples to files in one private
directory (prometheus-client's multiprocess mode): ``multiprocess_dir`` sets it up before the
first fork, the supervisor marks each reaped child dead, and the exporter child aggregates the
files on every scrape. A lone or embedded worker records into a registry of its own process.

The worker records a finished *batch* of outcomes at a time (``WorkerMetrics.finished``): counts
are summed per label set first and histograms bucketed locally, so a batch of 200 no-op tasks
costs a few dozen metric writes, not a thousand.
"""

from __future__ import annotations

import bisect
import logging
import os
import shutil
import tempfile
import weakref
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from vtasks.drivers.base import Claim, Outcome

logger = logging.getLogger("vtasks.metrics")

#: prometheus-client's switch for multiprocess mode (read when a metric value is created).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

#: Task durations: a no-op takes microseconds, a report minutes.
DURATION_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300,
    float("inf"),
)  # fmt: skip
#: Time from enqueue (or ``run_after``) to the start of the first attempt.
LATENCY_BUCKETS = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
    float("inf"),
)  # fmt: skip


def available() -> bool:
    """Whether ``prometheus_client`` (the ``metrics`` extra) is installed."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return False
    return True


def require() -> None:
    """Raise an ``ImportError`` naming the extra when ``prometheus_client`` is missing."""
    if not available():
        raise ImportError("vtasks metrics need prometheus-client: pip install 'vtasks[metrics]'")


# -- the metric families ---------------------------------------------------------------------
class Families:
    """Every ``vtasks_`` metric, created once per registry (``families(registry)``)."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        reg: Any = registry
        tq = ("task_name", "queue")
        self.submitted = Counter(
            "vtasks_tasks_submitted", "Tasks enqueued by this process.", tq, registry=reg
        )
        self.processed = Counter(
            "vtasks_tasks_processed",
            "Finished attempts, by the task's status after it (READY: it will be retried).",
            (*tq, "status"), registry=reg,
        )  # fmt: skip
        self.duration = Histogram(
            "vtasks_task_duration_seconds", "Run time of an attempt.", tq,
            buckets=DURATION_BUCKETS, registry=reg,
        )  # fmt: skip
        self.claim_latency = Histogram(
            "vtasks_claim_latency_seconds",
            "Time from a task's enqueue (or run_after) to the start of its first attempt.",
            ("queue",), buckets=LATENCY_BUCKETS, registry=reg,
        )  # fmt: skip
        self.retries = Counter(
            "vtasks_task_retries", "Attempts that ended in a retry (including a dead worker's "
            "claims released to run again).", registry=reg,
        )  # fmt: skip
        self.dead_letters = Counter(
            "vtasks_dead_letters", "Tasks that ended FAILED (the dead-letter store).", registry=reg
        )
        self.active = Gauge(
            "vtasks_active_tasks", "Tasks running now.", ("queue",),
            multiprocess_mode="livesum", registry=reg,
        )  # fmt: skip
        self.depth = Gauge(
            "vtasks_queue_depth", "Tasks due and waiting to be claimed (sampled).", ("queue",),
            multiprocess_mode="mostrecent", registry=reg,
        )  # fmt: skip
        self.processes = Gauge(
            "vtasks_processes", "Rows of the process table, by kind (sampled).", ("kind",),
            multiprocess_mode="mostrecent", registry=reg,
        )  # fmt: skip
        self.restarts = Counter(
            "vtasks_child_restarts", "Children the supervisor restarted after a crash.",
            ("kind",), registry=reg,
        )  # fmt: skip
        self.loop_blocked = Counter(
            "vtasks_event_loop_blocked", "Times a task blocked a worker's event loop for longer "
            "than VTASKS_LOOP_BLOCK_THRESHOLD (task_name empty: no task's code).",
            ("task_name",), registry=reg,
        )  # fmt: skip
        #: Label values the sampled gauges were set for: a value gone from a sample drops to 0.
        self.seen_queues: set[str] = set()
        self.seen_kinds: set[str] = set()


#: Keyed by the registry object itself, weakly: an id() could be reused by a later registry.
_families: weakref.WeakKeyDictionary[Any, Families] = weakref.WeakKeyDictionary()


def families(registry: CollectorRegistry | None = None) -> Families:
    """The metric families of ``registry`` (default: prometheus-client's ``REGISTRY``), created
    on first use: a second worker or exporter in the process shares them."""
    from prometheus_client import REGISTRY

    registry = registry if registry is not None else REGISTRY
    found = _families.get(registry)
    if found is None:
        found = _families[registry] = Families(registry)
    return found


# -- the worker's side -----------------------------------------------------------------------
class WorkerMetrics:
    """The worker's observer: told about finished batches, never about single tasks."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.f = families(registry)
        self._processed: dict[tuple[str, str, str], Any] = {}
        self._durations: dict[tuple[str, str], _Buckets] = {}
        self._latencies: dict[str, _Buckets] = {}
        self._active: dict[str, Any] = {}

    def finished(self, outcomes: Sequence[Outcome]) -> None:
        """Count a batch of outcomes: one increment per label set, bucketed histograms."""
        groups: dict[tuple[str, str, str], list[Outcome]] = {}
        for outcome in outcomes:  # the one per-outcome loop in Python; the rest runs per group
            claim = outcome.claim
            key: tuple[str, str, str] = (claim.task_path, claim.queue_name, outcome.status)
            group = groups.get(key)
            if group is None:
                groups[key] = [outcome]
            else:
                group.append(outcome)
        latencies: dict[str, list[float]] = {}
        for labels, group in groups.items():
            child = self._processed.get(labels)
            if child is None:
                child = self._processed[labels] = self.f.processed.labels(*labels)
            child.inc(len(group))
            status = labels[2]
            if status == "READY":
                self.f.retries.inc(len(group))
            elif status == "FAILED":
                self.f.dead_letters.inc(len(group))
            durations = [(o.finished_at - o.claim.last_attempted_at).total_seconds() for o in group]
            self._buckets(self._durations, labels[:2], self.f.duration).add(durations)
            firsts = [_latency(o.claim) for o in group if o.claim.attempt == 1]
            if firsts:
                latencies.setdefault(labels[1], []).extend(firsts)
        for queue, values in latencies.items():
            self._buckets(self._latencies, queue, self.f.claim_latency).add(values)

    def claimed(self, claims: Sequence[Claim]) -> None:
        pass  # counted once finished: the claim latency needs nothing more

    def running(self, claims: Iterable[Claim]) -> None:
        """Set the per-queue gauge of running tasks (queues seen before drop to 0)."""
        counts = dict.fromkeys(self._active, 0)
        for claim in claims:
            counts[claim.queue_name] = counts.get(claim.queue_name, 0) + 1
        for queue, count in counts.items():
            child = self._active.get(queue)
            if child is None:
                child = self._active[queue] = self.f.active.labels(queue)
            child.set(count)

    def recovered(self, requeued: int, failed: int) -> None:
        """A dead process's claims this worker released: retries and dead letters too."""
        if requeued:
            self.f.retries.inc(requeued)
        if failed:
            self.f.dead_letters.inc(failed)

    def loop_blocked(self, task_name: str) -> None:
        """A blocking episode of the worker's event loop (``runtime.loopwatch``; another thread)."""
        self.f.loop_blocked.labels(task_name).inc()

    @staticmethod
    def _buckets(cache: dict[Any, _Buckets], key: Any, family: Any) -> _Buckets:
        found = cache.get(key)
        if found is None:
            labels = key if isinstance(key, tuple) else (key,)
            found = cache[key] = _Buckets(family.labels(*labels))
        return found


class _Buckets:
    """Adds many observations to one histogram child with one write per touched bucket.

    ``Histogram.observe`` writes the sum and a bucket per value (two locked mmap writes each in
    multiprocess mode); this bisects locally, then increments. It uses the child's ``_sum`` and
    ``_buckets`` (non-cumulative, as ``observe`` fills them), with ``observe`` as the fallback.
    """

    def __init__(self, child: Any) -> None:
        self.child = child
        self.bounds: list[float] | None = getattr(child, "_upper_bounds", None)
        if not (self.bounds and hasattr(child, "_buckets") and hasattr(child, "_sum")):
            self.bounds = None

    def add(self, values: list[float]) -> None:
        bounds = self.bounds
        if bounds is None:
            for value in values:
                self.child.observe(value)
            return
        hits = Counter(map(partial(bisect.bisect_left, bounds), values))
        self.child._sum.inc(sum(values))
        for index, count in hits.items():
            self.child._buckets[index].inc(count)


def _latency(claim: Claim) -> float:
    available = claim.enqueued_at
    if claim.run_after is not None and claim.run_after > available:
        available = claim.run_after
    return max(0.0, (claim.last_attempted_at - available).total_seconds())


# -- sampled gauges --------------------------------------------------------------------------
def record_depths(depths: Mapping[str, Mapping[str, Any]], f: Families | None = None) -> None:
    """``queue_depths()`` of a backend into ``vtasks_queue_depth`` (its ``ready`` counts); a
    queue seen before and gone now (its tasks deleted) drops to 0."""
    f = f or families()
    counts = {queue: int(depth.get("ready", 0) or 0) for queue, depth in depths.items()}
    _set_all(f.depth, counts, f.seen_queues)


def record_processes(rows: Iterable[Mapping[str, Any]], f: Families | None = None) -> None:
    """``processes()`` of a backend into ``vtasks_processes`` (kinds seen before drop to 0)."""
    f = f or families()
    counts: dict[str, int] = {}
    for row in rows:
        kind = str(row.get("kind", ""))
        counts[kind] = counts.get(kind, 0) + 1
    _set_all(f.processes, counts, f.seen_kinds)


def _set_all(gauge: Any, counts: dict[str, int], seen: set[str]) -> None:
    for label in seen - counts.keys():
        counts[label] = 0
    seen.update(counts)
    for label, count in counts.items():
        gauge.labels(label).set(count)


# -- the enqueue side ------------------------------------------------------------------------
def count_enqueued(registry: CollectorRegistry | None = None) -> None:
    """Count this process's enqueues in ``vtasks_tasks_submitted_total`` (idempotent).

    Opt-in per process (a web process that wants it calls this from ``AppConfig.ready``): the
    receiver of ``task_enqueued`` is what makes an enqueue cost a signal dispatch.
    """
    from django.tasks.signals import task_enqueued

    f = families(registry)

    def on_enqueued(sender: Any, task_result: Any, **kwargs: Any) -> None:
        task = task_result.task
        f.submitted.labels(task.module_path, task.queue_name).inc()

    task_enqueued.connect(on_enqueued, weak=False, dispatch_uid=_submitted_uid(registry))


def stop_counting_enqueued(registry: CollectorRegistry | None = None) -> None:
    """Undo ``count_enqueued`` (an embedded worker's shutdown): enqueues cost no dispatch again."""
    from django.tasks.signals import task_enqueued

    task_enqueued.disconnect(dispatch_uid=_submitted_uid(registry))


def _submitted_uid(registry: CollectorRegistry | None) -> str:
    return f"vtasks.metrics.submitted.{'default' if registry is None else id(registry)}"


# -- the supervisor's side -------------------------------------------------------------------
def multiprocess_dir() -> str:
    """Create the tree's private sample directory and switch this process to multiprocess mode.

    Call before the first fork and before any metric exists. If something imported
    ``prometheus_client`` already, its value class is switched too (it is chosen at import).
    """
    path = tempfile.mkdtemp(prefix="vtasks-metrics-")
    os.environ[MULTIPROC_ENV] = path
    from prometheus_client import values

    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue()
    return path


def remove_multiprocess_dir(path: str) -> None:
    if os.environ.get(MULTIPROC_ENV) == path:
        del os.environ[MULTIPROC_ENV]
    shutil.rmtree(path, ignore_errors=True)


class TreeMetrics:
    """The supervisor's observer: a reaped child's live gauges go, restarts are counted."""

    def __init__(self) -> None:
        self.f = families()

    def reaped(self, pid: int) -> None:
        from prometheus_client import multiprocess

        try:
            multiprocess.mark_process_dead(pid)
        except OSError:
            logger.warning("vtasks: could not remove the metric files of pid %d", pid)

    def restarting(self, kind: str) -> None:
        self.f.restarts.labels(kind).inc()


def multiprocess_registry() -> CollectorRegistry:
    """A registry that aggregates every process of the tree (built per scrape, as documented)."""
    from prometheus_client import CollectorRegistry, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry
