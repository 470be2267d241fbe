"""Log line formats: ``text`` for people, ``json`` (one object per line) for log shippers."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(process)d] %(message)s"


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "pid", "message"[, "exc"]}``: stable keys, one line each."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        fields = getattr(record, "vtasks", None)
        if isinstance(fields, dict):  # a task event (``vtasks.observability.tasklog``)
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(level: str, log_format: str) -> None:
    """Log to stderr unless the project's ``LOGGING`` already did; ``json`` re-formats either way."""
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    configured = logging.getLogger("vtasks").handlers or logging.getLogger().handlers
    if not configured:
        handler = logging.StreamHandler()
        handler.setFormatter(formatter)
        logging.basicConfig(level=level.upper(), handlers=[handler])
    elif log_format == "json":
        for name in ("vtasks", ""):
            for existing in logging.getLogger(name).handlers:
                existing.setFormatter(formatter)
