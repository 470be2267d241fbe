"""Strict JSON for task arguments and return values.

Django's ``normalize_json`` lets through values that JSON cannot store faithfully (NaN, infinities,
non-string dict keys, integers orjson cannot hold). vtasks refuses them at enqueue, naming the
argument, so a task never runs with arguments other than those it was given.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from vtasks.core.errors import ArgumentNotJSON

_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


def normalize(value: Any, where: str) -> Any:
    """Return ``value`` as plain JSON types (tuples become lists), or raise ``ArgumentNotJSON``.

    ``where`` names the value in the error (``args[1]['when']``).
    """
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise ArgumentNotJSON(
                f"{where}: integer {value} is outside the 64-bit range JSON stores"
            )
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ArgumentNotJSON(f"{where}: {value!r} is not a JSON number")
        return value
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            raise ArgumentNotJSON(
                f"{where}: bytes that are not UTF-8 cannot be stored as JSON"
            ) from None
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ArgumentNotJSON(
                    f"{where}: dict key {key!r} is not a string; JSON would turn it into {str(key)!r}"
                )
            out[key] = normalize(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, Sequence):
        return [normalize(item, f"{where}[{i}]") for i, item in enumerate(value)]
    raise ArgumentNotJSON(f"{where}: Unsupported type: {type(value)} (task data must be JSON)")


#: Exact types that are JSON as they are: the common arguments skip ``normalize`` (and the
#: formatting of its error path) entirely.
_AS_IS = frozenset({str, bool, type(None)})


def normalize_arguments(args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[list, dict]:
    """Normalise a call's arguments, naming the first one that JSON cannot hold.

    The usual call (strings, booleans, ``None``, 64-bit integers) is copied and only looked at:
    a loop that finds nothing to convert costs a third of a comprehension that converts each
    item (and formats its place in the call for the error it would raise).
    """
    norm_args = list(args)
    for a in norm_args:
        if type(a) not in _AS_IS and not _json_int(a):
            norm_args = [
                a if type(a) in _AS_IS else normalize(a, f"args[{i}]")
                for i, a in enumerate(norm_args)
            ]
            break
    if not kwargs:
        return norm_args, {}
    norm_kwargs = dict(kwargs)
    for v in norm_kwargs.values():
        if type(v) not in _AS_IS and not _json_int(v):
            norm_kwargs = {
                k: v if type(v) in _AS_IS else normalize(v, f"kwargs[{k!r}]")
                for k, v in norm_kwargs.items()
            }
            break
    return norm_args, norm_kwargs


def _json_int(value: Any) -> bool:
    """An ``int`` (not a subclass such as an enum's) that JSON stores as it is."""
    return type(value) is int and _INT_MIN <= value <= _INT_MAX


def encode_return(value: Any) -> tuple[Any, str]:
    """A task's return value normalised, and as JSON text (``None``, the usual one, is free)."""
    if value is None:
        return None, "null"
    normalized = normalize(value, "return value")
    return normalized, dumps(normalized)


def dumps(value: Any) -> str:
    """Encode already-normalised data."""
    return orjson.dumps(value).decode()


_NO_KWARGS = b"{}"


def arguments_json(args: list[Any], kwargs: dict[str, Any]) -> tuple[bytes, bytes]:
    """Normalised ``args`` and ``kwargs`` as JSON (UTF-8): their size is checked against the
    payload cap, and a message embeds them as they are rather than encoding them again.

    Each is a copy of what orjson returns (see ``kept``): a bulk enqueue holds a thousand of them
    until its messages are built."""
    return kept(orjson.dumps(args)), kept(orjson.dumps(kwargs)) if kwargs else _NO_KWARGS


def kept(data: bytes) -> bytes:
    """``data`` copied into an object of its own size, for JSON that is held while more is encoded.

    orjson writes into a buffer of at least 1 KiB and shrinks it in place when done. With many of
    its results held at once, each further encoding slowed down and the process took fresh pages
    from the system: 2.1-3.3 µs a call, against 0.3-0.6 µs when a copy is held instead (1,000
    short argument lists, CPython 3.12 and 3.13 on glibc, fresh processes). A short copy comes
    from Python's own allocator, and orjson's buffer is freed at once for the next call."""
    return memoryview(data).tobytes()


def dumps_canonical(value: Any) -> str:
    """Encode with sorted keys: equal data gives equal text (for unique keys)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def loads(data: str | bytes) -> Any:
    return orjson.loads(data)
