"""``vtasks check``: the resolved configuration, one value per line, with the source that set it."""

from __future__ import annotations

from typing import Any

from vtasks.config.loader import Resolved
from vtasks.config.messages import origin_of


def explain(resolved: Resolved) -> list[str]:
    """``key = value    # source``; a pool filled from top-level defaults shows the pool's source."""
    rows = list(_flatten(resolved.topology.model_dump(mode="json")))
    width = max(len(f"{path} = {_show(value)}") for path, value in rows)
    lines = []
    for path, value in rows:
        text = f"{path} = {_show(value)}"
        source = _source(path, resolved.origins)
        lines.append(f"{text:<{width}}  # {source}")
    return lines


def _source(path: str, origins: dict[str, str]) -> str:
    """A pool key the pool did not set shows the top-level key it was filled from."""
    if path in origins:
        return origins[path]
    head, _, key = path.partition("].")
    if head.startswith("workers[") and key in ("queues", "concurrency"):
        return f"{origins.get(key, 'default')}, via top-level {key}"
    return origin_of(path, origins) or "default"


def _flatten(value: Any, prefix: str = "") -> Any:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for index, item in enumerate(value):
            yield from _flatten(item, f"{prefix}[{index}]")
    else:
        yield prefix, value


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)
