"""Every environment variable (and ``VTASKS_*`` Django setting) vtasks reads, spelled once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from vtasks.core.errors import ConfigError

HEARTBEAT_INTERVAL = "VTASKS_HEARTBEAT_INTERVAL"
ALIVE_THRESHOLD = "VTASKS_ALIVE_THRESHOLD"
SHUTDOWN_TIMEOUT = "VTASKS_SHUTDOWN_TIMEOUT"
WORKER_ID = "VTASKS_WORKER_ID"
BACKEND = "VTASKS_BACKEND"
CONCURRENCY = "VTASKS_CONCURRENCY"
QUEUES = "VTASKS_QUEUES"
LOG_FORMAT = "VTASKS_LOG_FORMAT"
HEALTH_FILE = "VTASKS_HEALTH_FILE"
CONFIG = "VTASKS_CONFIG"
DJANGO_SETTINGS_MODULE = "DJANGO_SETTINGS_MODULE"

#: Topology keys a ``VTASKS_*`` environment variable or Django setting may set, by name. Queue lists
#: are written comma-separated in the environment (``VTASKS_QUEUES=emails,default``).
TOPOLOGY_VARS: dict[str, str] = {
    BACKEND: "backend",
    HEARTBEAT_INTERVAL: "heartbeat_interval",
    ALIVE_THRESHOLD: "alive_threshold",
    SHUTDOWN_TIMEOUT: "shutdown_timeout",
    CONCURRENCY: "concurrency",
    QUEUES: "queues",
    LOG_FORMAT: "log_format",
    HEALTH_FILE: "health_file",
}

#: name -> (default, minimum)
RUNTIME_DEFAULTS: dict[str, tuple[float, float]] = {
    HEARTBEAT_INTERVAL: (5.0, 0.05),
    ALIVE_THRESHOLD: (30.0, 0.1),
    SHUTDOWN_TIMEOUT: (30.0, 0.0),
}


def runtime_value(
    name: str, settings: Any = None, environ: Mapping[str, str] = os.environ
) -> float:
    """A runtime number: the environment wins over Django settings, which win over the default."""
    default, minimum = RUNTIME_DEFAULTS[name]
    raw: Any = environ.get(name)
    source = f"environment variable {name}"
    if raw is None and settings is not None:
        raw, source = getattr(settings, name, None), f"setting {name}"
    if raw is None:
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: must be a number of seconds, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{source}: must be >= {minimum}, got {value}")
    return value
