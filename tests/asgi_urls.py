"""A tiny ASGI site for tests/e2e/test_asgi.py: an async view that enqueues, and the app factory.

Served with ``uvicorn tests.asgi_urls:make_application --factory``; the TASKS alias the view
enqueues on and the embedded worker serves comes from ``VTASKS_TEST_ASGI_BACKEND``.
"""

from __future__ import annotations

import os
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from tests import tasks

BACKEND_ENV = "VTASKS_TEST_ASGI_BACKEND"


@csrf_exempt  # a test endpoint posted to by urllib (the test settings carry CsrfViewMiddleware)
async def enqueue(request: HttpRequest) -> JsonResponse:
    """POST ``?file=..&token=..[&seconds=..]``: enqueue ``record`` (or ``sleep_then_record``)."""
    alias = os.environ[BACKEND_ENV]
    file, token = request.GET["file"], request.GET["token"]
    if "seconds" in request.GET:
        task: Any = tasks.sleep_then_record.using(backend=alias)
        result = await task.aenqueue(file, token, float(request.GET["seconds"]))
    else:
        result = await tasks.record.using(backend=alias).aenqueue(file, token)
    return JsonResponse({"id": result.id})


urlpatterns = [path("enqueue/", enqueue)]


def make_application() -> Any:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    from django.core.asgi import get_asgi_application
    from django.test import override_settings

    django_app = get_asgi_application()
    override_settings(ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"]).enable()
    from vtasks.asgi import get_worker_application

    return get_worker_application(
        django_app, backend=os.environ[BACKEND_ENV], queues=("default",), concurrency=4
    )
