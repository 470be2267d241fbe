"""The test settings plus django-prodserver, with one worker process named ``tasks``."""

import os

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "django_prodserver"]

PRODUCTION_PROCESSES = {
    "tasks": {
        "BACKEND": "vtasks.contrib.prodserver.VTasksSupervisor",
        "ARGS": {
            "config": os.environ.get("VTASKS_TEST_PRODSERVER_CONFIG", "vtasks.yml"),
            "burst": None,
        },
    },
}
