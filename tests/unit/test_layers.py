"""The web process imports only the backend side: never the runtime, uvloop or prometheus_client."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys, django
django.setup()
from django.tasks import task_backends
from tests import tasks
task_backends["default"].get_result  # the backend is built
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"uvloop", "prometheus_client"}
                or m.startswith(("vtasks.runtime", "vtasks.serve", "vtasks.launch", "vtasks.execution",
                                 "vtasks.task_threads", "vtasks.drivers.postgres")))
print(",".join(loaded))
"""


def test_enqueue_side_does_not_import_the_runtime():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "VTASKS_TEST_DATABASES": "default",
    }
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_lower_layers_do_not_import_higher_ones():
    layers = {
        "core": 0, "wire": 1, "config": 1, "drivers": 2, "observability": 2, "runtime": 3,
        "backends": 4, "declare": 4, "execution": 4, "serve": 4, "launch": 4, "ops": 4, "management": 4,
        "asgi": 4, "asyncmode": 4, "embedded": 4, "compat": 4, "contrib": 4, "admin": 4,
        "scheduler": 4, "schedules": 4, "outcomes": 4, "task_threads": 4,
        "sidecar": 4, "benchmarking": 4, "routers": 4, "worker_setup": 4, "urls_empty": 4,
        "cli": 5,
    }  # fmt: skip
    src = ROOT / "src" / "vtasks"
    offenders = []
    for path in src.rglob("*.py"):
        top = path.relative_to(src).parts[0].removesuffix(".py")
        if top not in layers:
            continue
        for line in path.read_text().splitlines():
            words = line.split()
            if (
                len(words) >= 2
                and words[0] in ("from", "import")
                and words[1].startswith("vtasks.")
            ):
                target = words[1].split(".")[1]
                if target in layers and layers[target] > layers[top]:
                    offenders.append(f"{path.relative_to(src)}: {line.strip()}")
    assert offenders == []
