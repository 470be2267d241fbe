"""A WSGI view that enqueues, for tests/e2e/test_gunicorn.py (the embedded worker under Gunicorn).

The TASKS alias comes from ``VTASKS_BACKEND``, which the Gunicorn hooks' embedded workers serve.
"""

from __future__ import annotations

import os
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from tests import tasks


@csrf_exempt  # posted to by urllib (the test settings carry CsrfViewMiddleware)
def enqueue(request: HttpRequest) -> JsonResponse:
    """POST ``?file=..&token=..[&seconds=..]``: enqueue ``record`` (or ``sleep_then_record``)."""
    alias = os.environ.get("VTASKS_BACKEND", "default")
    file, token = request.GET["file"], request.GET["token"]
    if "seconds" in request.GET:
        task: Any = tasks.sleep_then_record.using(backend=alias)
        result = task.enqueue(file, token, float(request.GET["seconds"]))
    else:
        result = tasks.record.using(backend=alias).enqueue(file, token)
    return JsonResponse({"id": result.id, "pid": os.getpid()})
