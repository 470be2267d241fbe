"""One function per configuration layer, each returning a partial mapping and where it came from.

No layer validates: values stay as written (strings from the environment included) and the loader
validates the merged mapping once, so a value is judged the same wherever it was set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vtasks.config import env
from vtasks.config.models import Topology
from vtasks.core.errors import ConfigError

#: A topology is a few dozen values: a document that expands to more (aliases of aliases, or an
#: alias inside itself) is refused before anything walks it.
MAX_NODES = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Layer:
    """A partial configuration: ``values`` as written, ``origins`` maps a key path to its source."""

    name: str
    values: dict[str, Any]
    origins: dict[str, str] = field(default_factory=dict)


def defaults() -> Layer:
    """The model's own defaults for the scalar keys (pools are derived from them when omitted)."""
    values: dict[str, Any] = {}
    for name, info in Topology.model_fields.items():
        if isinstance(info.default, str | int | float | tuple) and name != "workers":
            values[name] = list(info.default) if isinstance(info.default, tuple) else info.default
    values["scheduler"] = {"enabled": False}
    return Layer(name="defaults", values=values, origins=dict.fromkeys(_paths(values), "default"))


def django_settings(settings: Any) -> Layer:
    """``VTASKS_*`` Django settings (``VTASKS_CONCURRENCY = 20``, ``VTASKS_QUEUES = [...]``)."""
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for name, key in env.TOPOLOGY_VARS.items():
        if hasattr(settings, name):
            raw = getattr(settings, name)
            values[key] = _split(raw) if key == "queues" and isinstance(raw, str) else raw
            origins[key] = f"Django setting {name}"
    return Layer(name="settings", values=values, origins=origins)


def yaml_file(path: str | os.PathLike[str]) -> Layer:
    """The topology file. A syntax error names the line; the top level must be a mapping."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc.strerror}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        _check_size(node, path)
        values = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(_yaml_syntax_message(path, exc)) from None
    except RecursionError:
        raise ConfigError(f"{path}: the YAML document is nested too deeply") from None
    if values is None:
        return Layer(name="yaml", values={})
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {values!r}")
    origins: dict[str, str] = {}
    _node_origins(node, "", str(path), origins)
    return Layer(name="yaml", values=values, origins=origins)


def environment(environ: Mapping[str, str] = os.environ) -> Layer:
    """``VTASKS_*`` environment variables (queues comma-separated) and ``DJANGO_SETTINGS_MODULE``."""
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    names = {**env.TOPOLOGY_VARS, env.DJANGO_SETTINGS_MODULE: "django_settings"}
    for name, key in names.items():
        raw = environ.get(name)
        if raw is None or raw == "":
            continue
        values[key] = _split(raw) if key == "queues" else raw
        origins[key] = f"environment variable {name}"
    return Layer(name="env", values=values, origins=origins)


def command_line(options: Mapping[str, Any]) -> Layer:
    """Options given on the command line: ``{key: value}``, ``None`` meaning not given."""
    values = {key: value for key, value in options.items() if value is not None}
    return Layer(name="cli", values=values, origins=dict.fromkeys(_paths(values), "command line"))


def _split(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _yaml_syntax_message(path: str | os.PathLike[str], exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return f"{path}: YAML syntax error: {problem}"
    return f"{path}:{mark.line + 1}: YAML syntax error (column {mark.column + 1}): {problem}"


def _check_size(node: yaml.Node | None, path: str | os.PathLike[str]) -> None:
    """Refuse a document whose aliases expand it past ``MAX_NODES`` (or into itself): walking or
    merging it would never end."""
    todo, seen = [node], 0
    while todo:
        current = todo.pop()
        seen += 1
        if seen > MAX_NODES:
            raise ConfigError(
                f"{path}: the YAML document is too large: its aliases expand to more than "
                f"{MAX_NODES} values"
            )
        if isinstance(current, yaml.MappingNode):
            todo += [part for pair in current.value for part in pair]
        elif isinstance(current, yaml.SequenceNode):
            todo += current.value


def _node_origins(node: yaml.Node | None, prefix: str, where: str, out: dict[str, str]) -> None:
    """Record ``file:line`` for every key path of a composed YAML document."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = f"{prefix}.{key_node.value}" if prefix else str(key_node.value)
            out[path] = f"{where}:{key_node.start_mark.line + 1}"
            _node_origins(value_node, path, where, out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = f"{prefix}[{index}]"
            out[path] = f"{where}:{item.start_mark.line + 1}"
            _node_origins(item, path, where, out)


def _paths(values: Mapping[str, Any], prefix: str = "") -> list[str]:
    paths = []
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else key
        paths.append(path)
        if isinstance(value, Mapping):
            paths.extend(_paths(value, path))
    return paths
