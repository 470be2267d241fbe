"""The HTTP endpoint: ``/metrics`` (Prometheus text) and ``/healthz`` (the health state as JSON).

A plain WSGI app on the standard library's server: a scrape every few seconds needs no more, and
no framework is imported into a worker for it. ``registry`` is called per scrape, so the
supervisor's exporter aggregates the tree's sample files afresh each time (prometheus-client's
documented multiprocess usage).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

logger = logging.getLogger("vtasks.metrics")

#: ``/healthz``: the problems found (empty: healthy).
HealthCheck = Callable[[], list[str]]
StartResponse = Callable[..., Any]


def application(registry: Callable[[], Any], health: HealthCheck) -> Callable[..., Iterable[bytes]]:
    """The WSGI app; ``registry()`` returns the ``CollectorRegistry`` a scrape renders."""
    from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            body = generate_latest(registry())
            start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
            return [body]
        if path == "/healthz":
            problems = health()
            status = "503 Service Unavailable" if problems else "200 OK"
            body = json.dumps({"healthy": not problems, "problems": problems}).encode()
            start_response(status, [("Content-Type", "application/json")])
            return [body]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"vtasks: /metrics or /healthz\n"]

    return app


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every few seconds is not worth a log line


class _Server(WSGIServer):
    allow_reuse_address = True  # a restarted exporter rebinds at once


def bind(address: str, port: int, app: Callable[..., Iterable[bytes]]) -> WSGIServer:
    """Listen on ``address:port`` (raises ``OSError`` when taken)."""
    return make_server(address, port, app, server_class=_Server, handler_class=_Quiet)


def serve_in_thread(server: WSGIServer) -> threading.Thread:
    """Serve from a daemon thread: for a process that never forks (a lone or embedded worker)."""
    thread = threading.Thread(target=server.serve_forever, name="vtasks-metrics", daemon=True)
    thread.start()
    return thread
