"""``log_format: json``: one parseable object per line, with stable keys."""

from __future__ import annotations

import json
import logging

from vtasks.observability.logformat import JsonFormatter


def test_json_lines_have_stable_keys():
    record = logging.LogRecord(
        "vtasks.supervisor", logging.WARNING, __file__, 1, "a %s", ("b",), None
    )
    entry = json.loads(JsonFormatter().format(record))
    assert set(entry) == {"time", "level", "logger", "pid", "message"}
    assert (entry["level"], entry["logger"], entry["message"]) == (
        "WARNING",
        "vtasks.supervisor",
        "a b",
    )


def test_json_lines_carry_the_traceback():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line  # one record, one line
    assert "ValueError: boom" in json.loads(line)["exc"]
