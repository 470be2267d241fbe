"""Metrics wired to the Django side: the sampled gauges, the supervisor's exporter child, and the
endpoint of a lone worker.

Queue depths and the process table come from the backend's ``queue_depths()``/``processes()``
on a thread of their own every few seconds, never per scrape: a slow database must not make a
scrape (or the worker's loop) wait.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

from django.tasks import task_backends

from vtasks.observability import exporter, health, metrics
from vtasks.runtime import exitcodes, readiness
from vtasks.runtime.topology import ChildSpec

logger = logging.getLogger("vtasks.metrics")


class Sampler:
    """Every ``interval`` seconds, the backend's queue depths and process table into gauges."""

    def __init__(self, backend_alias: str, interval: float, f: metrics.Families | None = None):
        self.backend_alias = backend_alias
        self.interval = max(0.5, interval)
        self.f = f or metrics.families()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> None:
        backend = task_backends[self.backend_alias]
        if hasattr(backend, "queue_depths"):
            metrics.record_depths(backend.queue_depths(), self.f)
        if hasattr(backend, "processes"):
            metrics.record_processes(backend.processes(), self.f)

    def start(self) -> Sampler:
        self._thread = threading.Thread(
            target=self._run, name="vtasks-metrics-sampler", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        from django.db import connections

        try:
            while not self._stop.is_set():
                try:
                    self.sample()
                except Exception as exc:  # the database may be away for a while: sample later
                    logger.warning("vtasks: could not sample queue depths: %s", exc)
                self._stop.wait(self.interval)
        finally:
            connections.close_all()  # this thread's connections


# -- the supervisor's exporter child -----------------------------------------------------------
def run_exporter(spec: ChildSpec) -> int:
    """The ``metrics`` child: serve the tree's aggregated ``/metrics`` and ``/healthz`` until
    SIGTERM. A port it cannot bind is logged and the child exits (restarted with back-off): the
    workers go on either way, metrics are not worth halting the tree for."""
    endpoint = spec.metrics
    assert endpoint is not None
    stopping = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    app = exporter.application(
        metrics.multiprocess_registry,
        lambda: health.judge(endpoint.health_file, endpoint.health_max_age),
    )
    try:
        server = exporter.bind(endpoint.address, endpoint.port, app)
    except OSError as exc:
        logger.error(
            "vtasks: cannot serve metrics on %s:%d: %s", endpoint.address, endpoint.port, exc
        )
        return exitcodes.CRASH
    sampler = Sampler(spec.backend, endpoint.sample_interval).start()
    exporter.serve_in_thread(server)
    logger.info("vtasks: metrics on http://%s:%d/metrics", endpoint.address, endpoint.port)
    readiness.announce()
    try:
        while not stopping.wait(1.0):
            pass
    finally:
        server.shutdown()
        server.server_close()
        sampler.stop()
    return exitcodes.OK


def tree_worker_observer(spec: ChildSpec) -> Any:
    """A supervised worker's observer when the tree records metrics (else ``None``)."""
    if spec.metrics is None:
        return None
    metrics.count_enqueued()  # tasks that enqueue tasks
    return metrics.WorkerMetrics()


# -- a lone worker ---------------------------------------------------------------------------
class LoneEndpoint:
    """``--metrics-port``: this process's registry on ``address:port``, depths sampled beside."""

    def __init__(
        self, backend_alias: str, address: str, port: int, *, interval: float,
        health_file: str | None = None, max_age: float = 30.0,
    ) -> None:  # fmt: skip
        """Binds at once: a missing extra or a taken port stops the worker before it claims."""
        try:
            metrics.require()
        except ImportError as exc:
            raise SystemExit(f"vtasks: --metrics-port: {exc}") from None
        from prometheus_client import REGISTRY

        self.observer = metrics.WorkerMetrics()
        metrics.count_enqueued()
        self.sampler = Sampler(backend_alias, interval)

        def check() -> list[str]:
            return health.judge(health_file, max_age) if health_file else []

        try:
            self.server = exporter.bind(
                address, port, exporter.application(lambda: REGISTRY, check)
            )
        except OSError as exc:
            raise SystemExit(f"vtasks: cannot serve metrics on {address}:{port}: {exc}") from None
        self.port = self.server.server_port

    def __enter__(self) -> LoneEndpoint:
        self.sampler.start()
        exporter.serve_in_thread(self.server)
        logger.info("vtasks: metrics on http://%s:%d/metrics", *self.server.server_address[:2])
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.sampler.stop()
