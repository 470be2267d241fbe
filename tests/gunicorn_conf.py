"""Gunicorn configuration for tests/e2e/test_gunicorn.py: an embedded vtasks worker per worker."""

from vtasks.contrib.gunicorn import post_fork, worker_exit

# Above VTASKS_SHUTDOWN_TIMEOUT (5 s in the test settings): the drain must end before the kill.
graceful_timeout = 15

__all__ = ["post_fork", "worker_exit", "graceful_timeout"]
