"""Every environment variable (and ``VTASKS_*`` Django setting) vtasks reads, spelled once."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vtasks.core.errors import ConfigError
from vtasks.core.selectors import selector_problem

HEARTBEAT_INTERVAL = "VTASKS_HEARTBEAT_INTERVAL"
ALIVE_THRESHOLD = "VTASKS_ALIVE_THRESHOLD"
SHUTDOWN_TIMEOUT = "VTASKS_SHUTDOWN_TIMEOUT"
#: Seconds a worker's event loop may be blocked before a warning names the task (0: off).
LOOP_BLOCK_THRESHOLD = "VTASKS_LOOP_BLOCK_THRESHOLD"
WORKER_ID = "VTASKS_WORKER_ID"
BACKEND = "VTASKS_BACKEND"
CONCURRENCY = "VTASKS_CONCURRENCY"
QUEUES = "VTASKS_QUEUES"
LOG_FORMAT = "VTASKS_LOG_FORMAT"
HEALTH_FILE = "VTASKS_HEALTH_FILE"
#: django-vtasks' name for the health file; ``VTASKS_HEALTH_FILE`` wins when both are set.
HEALTH_CHECK_FILE = "VTASKS_HEALTH_CHECK_FILE"
RUN_SCHEDULER = "VTASKS_RUN_SCHEDULER"
#: What a supervisor runs: all, work (the worker pools) or schedule (the scheduler); the topology's
#: ``roles`` (``vtasks supervise --only-work`` / ``--only-schedule``).
ROLES = "VTASKS_ROLES"
#: fork (a child process per worker) or async (every role in one process): the topology's ``mode``.
MODE = "VTASKS_MODE"
#: A lone worker's ``/metrics`` port (django-vtasks' name; ``--metrics-port`` wins).
METRICS_PORT = "VTASKS_METRICS_PORT"
#: One log line per task event (``vtasks.observability.tasklog``); off by default.
LOG_TASKS = "VTASKS_LOG_TASKS"
COMPRESS_THRESHOLD = "VTASKS_COMPRESS_THRESHOLD"
MAX_PAYLOAD_BYTES = "VTASKS_MAX_PAYLOAD_BYTES"
DLQ_CAP = "VTASKS_DLQ_CAP"
VALKEY_PREFIX = "VTASKS_VALKEY_PREFIX"
#: ``true`` in a worker-only process: see ``vtasks.worker_setup``.
IS_WORKER = "VTASKS_IS_WORKER"
CONFIG = "VTASKS_CONFIG"
DJANGO_SETTINGS_MODULE = "DJANGO_SETTINGS_MODULE"
#: Set by systemd for a ``Type=notify`` service (``sd_notify(3)``): the socket, the watchdog period
#: in microseconds, and the one process the watchdog applies to.
NOTIFY_SOCKET = "NOTIFY_SOCKET"
WATCHDOG_USEC = "WATCHDOG_USEC"
WATCHDOG_PID = "WATCHDOG_PID"

#: Topology keys a ``VTASKS_*`` environment variable or Django setting may set, by name. Queue lists
#: are written comma-separated in the environment (``VTASKS_QUEUES=emails,default``).
TOPOLOGY_VARS: dict[str, str] = {
    BACKEND: "backend",
    HEARTBEAT_INTERVAL: "heartbeat_interval",
    ALIVE_THRESHOLD: "alive_threshold",
    SHUTDOWN_TIMEOUT: "shutdown_timeout",
    LOOP_BLOCK_THRESHOLD: "loop_block_threshold",
    CONCURRENCY: "concurrency",
    QUEUES: "queues",
    LOG_FORMAT: "log_format",
    LOG_TASKS: "log_tasks",
    ROLES: "roles",
    MODE: "mode",
    HEALTH_CHECK_FILE: "health_file",
    HEALTH_FILE: "health_file",
}

#: Tasks a worker process runs at once unless told otherwise (django-vtasks' default).
DEFAULT_CONCURRENCY = 20

#: name -> (default, minimum)
RUNTIME_DEFAULTS: dict[str, tuple[float, float]] = {
    HEARTBEAT_INTERVAL: (5.0, 0.05),
    ALIVE_THRESHOLD: (30.0, 0.1),
    SHUTDOWN_TIMEOUT: (30.0, 0.0),
    LOOP_BLOCK_THRESHOLD: (1.0, 0.0),
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


# -- django-vtasks' settings: one value each, the environment over Django settings over the default --
@dataclass(frozen=True, slots=True)
class Setting:
    """A ``VTASKS_*`` value read outside the topology (by a lone worker, a backend, a command)."""

    name: str
    default: Any
    #: ``(raw value, where it came from) -> value``; raises ``ConfigError`` naming the source.
    parse: Callable[[Any, str], Any]


def _whole(minimum: int) -> Callable[[Any, str], int]:
    def parse(raw: Any, source: str) -> int:
        try:
            value = int(raw)
            if isinstance(raw, bool) or (isinstance(raw, float) and raw != value):
                raise ValueError
        except (TypeError, ValueError):
            raise ConfigError(f"{source}: must be a whole number, got {raw!r}") from None
        if value < minimum:
            raise ConfigError(f"{source}: must be >= {minimum}, got {value}")
        return value

    return parse


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def _flag(raw: Any, source: str) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise ConfigError(f"{source}: must be true or false, got {raw!r}")


def _text(raw: Any, source: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str | os.PathLike):
        raise ConfigError(f"{source}: must be a string, got {raw!r}")
    return os.fspath(raw) or None


def _queue_names(raw: Any, source: str) -> list[str]:
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ConfigError(f"{source}: must be a list of queue names, got {raw!r}")
    names = [name.strip() for name in items if name.strip()]
    if not names:
        raise ConfigError(f"{source}: must list at least one queue name, got {raw!r}")
    for name in names:
        problem = selector_problem(name)
        if problem:
            raise ConfigError(f"{source}: {problem}")
    return names


def _prefix(raw: Any, source: str) -> str:
    # django-vtasks appends ":" itself; vtasks' key names add their own separator.
    text = _text(raw, source)
    if not text or not text.rstrip(":"):
        raise ConfigError(f"{source}: must be a non-empty key prefix, got {raw!r}")
    return text.rstrip(":")


QUEUES_SETTING = Setting(QUEUES, ["default"], _queue_names)
CONCURRENCY_SETTING = Setting(CONCURRENCY, DEFAULT_CONCURRENCY, _whole(1))
BACKEND_SETTING = Setting(BACKEND, "default", _text)
WORKER_ID_SETTING = Setting(WORKER_ID, None, _text)  # None: ``hostname:pid``
RUN_SCHEDULER_SETTING = Setting(RUN_SCHEDULER, True, _flag)
# ``None``: the default of the module that owns the value (``wire.envelope``: 1024 bytes; the
# Valkey driver: 1000 dead letters per queue; ``drivers.valkey.keys``: "vt").
COMPRESS_THRESHOLD_SETTING = Setting(COMPRESS_THRESHOLD, None, _whole(0))
DLQ_CAP_SETTING = Setting(DLQ_CAP, None, _whole(1))
#: Enqueue refuses a call whose arguments encode to more bytes than this (1 MiB by default): a
#: queue carries references to data, not the data, and every claim reads the whole message.
MAX_PAYLOAD_BYTES_SETTING = Setting(MAX_PAYLOAD_BYTES, 1024 * 1024, _whole(1))
VALKEY_PREFIX_SETTING = Setting(VALKEY_PREFIX, None, _prefix)
HEALTH_CHECK_FILE_SETTING = Setting(HEALTH_CHECK_FILE, None, _text)
METRICS_PORT_SETTING = Setting(METRICS_PORT, None, _whole(1))  # None: no endpoint
LOG_TASKS_SETTING = Setting(LOG_TASKS, False, _flag)
IS_WORKER_SETTING = Setting(IS_WORKER, False, _flag)


def value(setting: Setting, settings: Any = None, environ: Mapping[str, str] = os.environ) -> Any:
    """``setting``'s value: its environment variable (when set and not empty) wins over the Django
    setting of the same name, which wins over the default. ``settings`` defaults to Django's own
    when they are configured."""
    raw = environ.get(setting.name)
    if raw not in (None, ""):
        return setting.parse(raw, f"environment variable {setting.name}")
    if settings is None:
        settings = django_settings()
    raw = getattr(settings, setting.name, None) if settings is not None else None
    if raw is None:
        return setting.default
    return setting.parse(raw, f"setting {setting.name}")


def django_settings() -> Any:
    """Django's settings when they are configured, else ``None`` (no import-time Django setup)."""
    from django.conf import settings

    return settings if settings.configured else None
