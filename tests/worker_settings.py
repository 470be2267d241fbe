"""The test settings as a worker-only process loads them: ``tests.settings`` trimmed by
``vtasks.worker_setup.configure_worker`` when ``VTASKS_IS_WORKER=true`` (tests/e2e)."""

from tests.settings import *  # noqa: F403
from vtasks.worker_setup import configure_worker

configure_worker(globals())
