"""The named SQL statements of ``queries.sql``, parsed once when this module is imported.

Keeping SQL in one ``.sql`` file (no statement built with f-strings) lets it be read, reviewed and
run in ``psql`` as it is sent.
"""

from __future__ import annotations

import re
from importlib import resources
from types import MappingProxyType
from typing import LiteralString, cast

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$")


def parse(text: str) -> dict[str, LiteralString]:
    """Split ``-- name: x`` blocks into ``{"x": "statement"}``, dropping whole-line comments."""
    queries: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        match = _NAME.match(line.strip())
        if match:
            if match[1] in queries:
                raise ValueError(f"queries.sql: query {match[1]!r} is defined twice")
            current = queries[match[1]] = []
        elif current is not None and not line.lstrip().startswith("--"):
            current.append(line)
    # The file is part of the package, never user input: its text is as literal as a constant.
    return {
        name: cast(LiteralString, "\n".join(lines).strip().rstrip(";"))
        for name, lines in queries.items()
    }


QUERIES = MappingProxyType(
    parse(resources.files(__package__).joinpath("queries.sql").read_text("utf-8"))
)
