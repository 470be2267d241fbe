"""Named SQL statements kept in ``.sql`` files: ``-- name: x`` blocks, parsed once per file.

Keeping SQL in files (no statement built with f-strings) lets it be read, reviewed and run in a
database shell as it is sent.
"""

from __future__ import annotations

import re
from importlib import resources
from types import MappingProxyType
from typing import LiteralString, cast

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$")


def parse(text: str, source: str = "queries.sql") -> dict[str, LiteralString]:
    """Split ``-- name: x`` blocks into ``{"x": "statement"}``, dropping whole-line comments."""
    queries: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        match = _NAME.match(line.strip())
        if match:
            if match[1] in queries:
                raise ValueError(f"{source}: query {match[1]!r} is defined twice")
            current = queries[match[1]] = []
        elif current is not None and not line.lstrip().startswith("--"):
            current.append(line)
    # The file is part of the package, never user input: its text is as literal as a constant.
    return {
        name: cast(LiteralString, "\n".join(lines).strip().rstrip(";"))
        for name, lines in queries.items()
    }


def load(package: str, filename: str) -> MappingProxyType[str, LiteralString]:
    """The named statements of ``filename`` in ``package``, read-only."""
    text = resources.files(package).joinpath(filename).read_text("utf-8")
    return MappingProxyType(parse(text, f"{package}/{filename}"))
