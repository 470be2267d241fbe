"""An empty URLconf for worker-only processes (``vtasks.worker_setup``): nothing to import."""

from typing import Any

urlpatterns: list[Any] = []
