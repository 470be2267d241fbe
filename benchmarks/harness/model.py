"""What one run measures, as plain dataclasses (written to ``.work/results.json`` and RESULTS.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True, kw_only=True)
class Rate:
    n: int
    seconds: float
    rate: float


@dataclass(slots=True, kw_only=True)
class Check:
    """Every task accounted for by its key: run once, not lost, not run twice."""

    expected: int
    completed: int
    lost: int
    duplicated: int  # Keys that ran more than once.
    unexpected: int = 0  # Keys nobody enqueued in this phase.
    unfinished_in_db: int | None = (
        None  # Rows the system still has as not finished after the worker stopped.
    )

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.unexpected or self.unfinished_in_db)

    def text(self) -> str:
        parts = [
            f"{self.completed}/{self.expected} ran",
            f"{self.lost} lost",
            f"{self.duplicated} twice",
        ]
        if self.unexpected:
            parts.append(f"{self.unexpected} unexpected")
        if self.unfinished_in_db is not None:
            parts.append(f"{self.unfinished_in_db} unfinished in the db")
        return ", ".join(parts)


@dataclass(slots=True, kw_only=True)
class StoredCheck:
    """After an enqueue phase: the rows the system stored against the enqueue calls made."""

    expected: int
    stored: int

    @property
    def ok(self) -> bool:
        return self.expected == self.stored


@dataclass(slots=True, kw_only=True)
class ProcessRun:
    concurrency: int
    n: int
    seconds: float | None = None  # Worker spawn -> the last of the n completions.
    startup_seconds: float | None = None  # Worker spawn -> the first completion.
    peak_process_mb: float | None = None
    peak_tree_mb: float | None = None
    processes: int = 0
    exit_code: int | None = None
    timed_out: bool = False
    check: Check | None = None

    @property
    def rate(self) -> float | None:
        return self.n / self.seconds if self.seconds and not self.timed_out else None

    @property
    def steady_rate(self) -> float | None:
        """First completion -> last: the rate without process startup."""
        if self.seconds is None or self.startup_seconds is None or self.timed_out:
            return None
        span = self.seconds - self.startup_seconds
        return (self.n - 1) / span if span > 0 else None


@dataclass(slots=True, kw_only=True)
class SleepRun(ProcessRun):
    """A queue of tasks that each sleep ``sleep_seconds`` and then record (the time is their end)."""

    sleep_seconds: float = 0.05

    @property
    def sleep_rate(self) -> float | None:
        """Tasks ÷ (the first task's start → the last task's end): no worker start-up in it."""
        if self.seconds is None or self.startup_seconds is None or self.timed_out:
            return None
        return self.n / (self.seconds - self.startup_seconds + self.sleep_seconds)


@dataclass(slots=True, kw_only=True)
class Latency:
    samples_ms: list[float]
    missed: int
    concurrency: int
    check: Check | None = None
    peak_process_mb: float | None = None

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile."""
        if not self.samples_ms:
            return None
        ordered = sorted(self.samples_ms)
        rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
        return ordered[rank - 1]


@dataclass(slots=True, kw_only=True)
class SystemResult:
    name: str
    version: str | None
    settings: str
    info: dict[str, Any] = field(default_factory=dict)
    sync: Rate | None = None
    async_: Rate | None = None
    bulk: Rate | None = None
    bulk_api: str | None = None
    stored_checks: dict[str, StoredCheck] = field(default_factory=dict)
    tuning: list[ProcessRun] = field(default_factory=list)
    process: ProcessRun | None = None
    latency: Latency | None = None
    sleep: list[SleepRun] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    #: Every round of the repeated phases (``runner.ROUNDS``); the fields above keep the median.
    sync_rounds: list[Rate] = field(default_factory=list)
    async_rounds: list[Rate] = field(default_factory=list)
    bulk_rounds: list[Rate] = field(default_factory=list)
    process_rounds: list[ProcessRun] = field(default_factory=list)
