"""dj_queue (PyPI ``dj-queue``): its supervisor ``manage.py dj_queue --only-work``, one worker process."""

from __future__ import annotations

from systems.base import *  # noqa: F403

INSTALLED_APPS = ["dj_queue"]
DATABASE_ROUTERS = ["dj_queue.routers.DjQueueRouter"]
TASKS = {
    "default": {
        "BACKEND": "dj_queue.backend.DjQueueBackend",
        "QUEUES": [],
        "OPTIONS": {
            # One worker process; its threads are the concurrency the harness tunes.
            "workers": [
                {
                    "queues": "*",
                    "threads": CONCURRENCY,  # noqa: F405
                    "processes": 1,
                    "polling_interval": 0.1,
                    "prefetch_multiplier": 2,
                }
            ],
            "listen_notify": True,
            "use_skip_locked": True,
        },
    }
}
