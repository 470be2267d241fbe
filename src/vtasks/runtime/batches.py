"""Batch queues: a queue whose messages are handed to their task together, not one by one.

``VTASKS_BATCH_QUEUES = {"reports": {"count": 100, "timeout": 5.0}}``: a worker serving
``reports`` claims up to ``count`` of its messages, waiting at most ``timeout`` seconds after the
first one for the batch to fill, then calls each task once with the list of its messages. The
messages stay claimed under the worker's lease the whole time, like any running task, so a worker
killed while collecting or running a batch loses none of them: the live processes release them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vtasks.core.errors import ConfigError

SETTING = "VTASKS_BATCH_QUEUES"
DEFAULT_COUNT = 100
DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class BatchQueue:
    count: int = DEFAULT_COUNT
    #: Seconds a partial batch waits for more messages after its first one.
    timeout: float = DEFAULT_TIMEOUT


def parse_batch_queues(raw: Any, where: str = SETTING) -> dict[str, BatchQueue]:
    """``{queue: {"count": n, "timeout": seconds}}`` checked; each error names the entry."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a mapping of queue names, got {type(raw).__name__}")
    queues: dict[str, BatchQueue] = {}
    for name, spec in raw.items():
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: queue names must be non-empty strings, got {name!r}")
        spec = {} if spec is None else spec
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}[{name!r}]: must be a mapping, got {type(spec).__name__}")
        unknown = set(spec) - {"count", "timeout"}
        if unknown:
            raise ConfigError(f"{where}[{name!r}]: unknown key(s) {sorted(unknown)}")
        count = spec.get("count", DEFAULT_COUNT)
        timeout = spec.get("timeout", DEFAULT_TIMEOUT)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ConfigError(
                f"{where}[{name!r}].count: must be a whole number >= 1, got {count!r}"
            )
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or timeout < 0:
            raise ConfigError(f"{where}[{name!r}].timeout: must be seconds >= 0, got {timeout!r}")
        queues[name] = BatchQueue(count=count, timeout=float(timeout))
    return queues
