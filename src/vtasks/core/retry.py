"""Retry policies: ``backoff(exception, task_result) -> seconds | None``.

The shape follows Django's open retry proposal (new-features #142): a task carries ``max_attempts``
and a ``backoff`` callable; ``None`` from the callable means "do not retry".
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Backoff = Callable[[BaseException, Any], float | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExponentialBackoff:
    """``base * factor**(attempt-1)`` seconds, capped, with full jitter; only for ``retry_on``.

    ``retry_on`` is an allow-list of exception classes (empty: retry every ``Exception``).
    ``BaseException``s that are not ``Exception``s (``SystemExit``) are never retried.
    """

    base: float = 1.0
    factor: float = 2.0
    cap: float = 300.0
    jitter: bool = True
    retry_on: tuple[type[BaseException], ...] = ()

    def __call__(self, exception: BaseException, task_result: Any) -> float | None:
        if not isinstance(exception, Exception):
            return None
        if self.retry_on and not isinstance(exception, self.retry_on):
            return None
        attempt = max(1, int(getattr(task_result, "attempts", 1)))
        delay = min(self.cap, self.base * self.factor ** (attempt - 1))
        return random.uniform(0, delay) if self.jitter else delay


def no_delay(exception: BaseException, task_result: Any) -> float | None:
    """Retry at once (the default when ``max_attempts`` > 1 and no ``backoff`` is given)."""
    return 0.0 if isinstance(exception, Exception) else None


def retry_delay(
    backoff: Backoff | None,
    exception: BaseException,
    task_result: Any,
    attempt: int,
    max_attempts: int,
) -> float | None:
    """Seconds until the next attempt, or ``None`` when this failure is final."""
    if attempt >= max_attempts:
        return None
    delay = (backoff or no_delay)(exception, task_result)
    if delay is None:
        return None
    return max(0.0, float(delay))
