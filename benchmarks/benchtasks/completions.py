"""Read the completion logs that ``benchtasks.record`` writes, incrementally."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from benchtasks.record import FILE_PREFIX


class CompletionReader:
    """Tails every ``done-*.log`` in a directory; counts runs per key and keeps each key's first time."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.counts: Counter[str] = Counter()
        self.first_seen: dict[str, float] = {}
        self.first_time: float | None = None
        self.last_time: float | None = None
        self._offsets: dict[Path, int] = {}
        self._partial: dict[Path, bytes] = {}

    def poll(self) -> list[str]:
        """Read what was appended since the last poll; returns the keys seen for the first time."""
        fresh: list[str] = []
        for path in sorted(self.directory.glob(f"{FILE_PREFIX}*.log")):
            fresh.extend(self._read(path))
        return fresh

    def _read(self, path: Path) -> list[str]:
        offset = self._offsets.get(path, 0)
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read()
        if not data:
            return []
        self._offsets[path] = offset + len(data)
        data = self._partial.pop(path, b"") + data
        lines = data.split(b"\n")
        if lines[-1]:
            self._partial[path] = lines[-1]
        fresh: list[str] = []
        for line in lines[:-1]:
            key, _, stamp = line.decode().partition(" ")
            if self._add(key, float(stamp)):
                fresh.append(key)
        return fresh

    def _add(self, key: str, stamp: float) -> bool:
        self.counts[key] += 1
        self.first_time = stamp if self.first_time is None else min(self.first_time, stamp)
        self.last_time = stamp if self.last_time is None else max(self.last_time, stamp)
        if key in self.first_seen:
            return False
        self.first_seen[key] = stamp
        return True

    def duplicates(self) -> dict[str, int]:
        return {key: n for key, n in self.counts.items() if n > 1}
