"""Merge the configuration layers (defaults < Django settings < YAML < environment < CLI), validate once.

Mappings merge key by key (``scheduler.enabled`` from the environment keeps ``metrics`` from the
file); lists and scalars replace, so a pool list is always the one a single layer wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from vtasks.config.messages import describe, origin_of, path_of
from vtasks.config.models import Topology
from vtasks.config.sources import Layer
from vtasks.core.errors import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolved:
    """The validated topology and, per key path, the source of the value that won."""

    topology: Topology
    origins: dict[str, str]


def merge(layers: Sequence[Layer]) -> tuple[dict[str, Any], dict[str, str]]:
    """Merge later layers over earlier ones; returns the mapping and its per-path origins."""
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for layer in layers:
        _merge_into(values, layer.values)
        for path in layer.values:
            _forget(origins, path)
        origins.update(layer.origins)
    return values, origins


def peek(layers: Sequence[Layer], key: str) -> Any:
    """One top-level key's merged value, before validation (to find Django's settings module)."""
    return merge(layers)[0].get(key)


def load(layers: Sequence[Layer]) -> Resolved:
    """Merge and validate; a ``ConfigError`` lists every problem, one per line, with its source."""
    values, origins = merge(layers)
    try:
        topology = Topology.model_validate(values)
    except ValidationError as exc:
        raise ConfigError("\n".join(problems(exc, origins))) from None
    return Resolved(topology=topology, origins=origins)


def problems(error: ValidationError, origins: Mapping[str, str]) -> list[str]:
    """``workers[1].concurrency: must be >= 1, got 0 (vtasks.yml:9)``, one per pydantic error."""
    items = error.errors()
    top_level = {
        (tuple(i["loc"]), repr(i.get("input"))) for i in items if i["loc"][:1] != ("workers",)
    }
    lines = []
    for item in items:
        if _inherited(item, top_level, origins):
            continue  # the same bad top-level value, copied into a pool that did not set it
        path, message = describe(item)
        where = origin_of(path, origins)
        suffix = f" ({where})" if where else ""
        lines.append(f"{path or '(top level)'}: {message}{suffix}")
    return lines


def _inherited(
    item: ErrorDetails, top_level: set[tuple[Any, str]], origins: Mapping[str, str]
) -> bool:
    loc = tuple(item["loc"])
    if len(loc) < 3 or loc[0] != "workers" or (loc[2:], repr(item.get("input"))) not in top_level:
        return False
    return path_of(loc[:3]) not in origins


def _merge_into(target: dict[str, Any], update: Mapping[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge_into(target[key], value)
        else:
            target[key] = _copy(value)


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    return value


def _forget(origins: dict[str, str], path: str) -> None:
    """Drop origins under ``path`` that a non-mapping value from a later layer replaces."""
    for known in list(origins):
        if known.startswith(f"{path}[") or known == path:
            del origins[known]
