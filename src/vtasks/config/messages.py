"""Pydantic's errors in vtasks' words: ``path: rule, got value`` plus where the value came from.

Pydantic's own text ("Input should be greater than or equal to 1") names neither the key path as a
user writes it nor the file; operators read these messages at 3 a.m., so they are ours.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

from pydantic_core import ErrorDetails

from vtasks.config.models import known_keys

_RULES: dict[str, str] = {
    "greater_than_equal": "must be >= {ge}",
    "greater_than": "must be > {gt}",
    "less_than_equal": "must be <= {le}",
    "less_than": "must be < {lt}",
    "string_too_short": "must not be empty",
    "string_too_long": "must be at most {max_length} characters",
    "string_pattern_mismatch": "must use only letters, digits, '_', '.' and '-'",
    "too_short": "must list at least {min_length} item(s)",
    "missing": "is required",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "tuple_type": "must be a list",
    "list_type": "must be a list",
    "model_type": "must be a mapping of keys",
    "model_attributes_type": "must be a mapping of keys",
    "dict_type": "must be a mapping of keys",
    "literal_error": "must be one of {expected}",
    "path_type": "must be a file path",
}

_NO_INPUT = {"missing", "extra_forbidden", "value_error"}


def path_of(loc: tuple[int | str, ...]) -> str:
    """``("workers", 1, "concurrency")`` -> ``workers[1].concurrency``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def describe(error: ErrorDetails) -> tuple[str, str]:
    """The key path and the message for one pydantic error."""
    path = path_of(tuple(error["loc"]))
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        return path, _unknown_key(path)
    if kind == "value_error":
        return path, str(ctx.get("error", error["msg"]))
    template = _RULES.get(kind)
    message = template.format(**ctx) if template else _lower_first(error["msg"])
    if kind not in _NO_INPUT:
        message += f", got {_show(error.get('input'))}"
    return path, message


def origin_of(path: str, origins: Mapping[str, str]) -> str | None:
    """The source of ``path`` or of its nearest ancestor (a pool filled from the top level)."""
    while path:
        if path in origins:
            return origins[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return None


def _unknown_key(path: str) -> str:
    key = path.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(key, sorted(known_keys()), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key{hint}"


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    return repr(value)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]
