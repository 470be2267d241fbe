"""The named SQL statements of ``queries.sql``, parsed once when this module is imported."""

from __future__ import annotations

from vtasks.core.sqlfile import load

QUERIES = load(__package__ or "vtasks.drivers.sql", "queries.sql")
