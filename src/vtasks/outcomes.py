"""How an attempt ended, as the ``Outcome`` the worker records: success, a failure that is retried
(READY with its due time) or final (FAILED, a dead letter), or a message that cannot run at all.
The error record is Django's ``TaskError`` shape (class path and traceback)."""

from __future__ import annotations

import traceback
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.tasks import TaskResult, TaskResultStatus
from django.tasks.base import Task as DjangoTask
from django.tasks.base import TaskError

from vtasks.core.errors import TaskTimeout, UnknownTask
from vtasks.core.retry import retry_delay
from vtasks.drivers.base import Claim, Outcome

#: ``settings.USE_TZ``, read once: reading it through Django's lazy settings object on every
#: task cost more than the clock itself. Forgotten whenever the setting changes (tests).
_use_tz: bool | None = None


def _now() -> datetime:
    """``django.utils.timezone.now()``, without a ``settings`` look-up per call."""
    global _use_tz
    if _use_tz is None:
        _use_tz = bool(settings.USE_TZ)
    return datetime.now(UTC) if _use_tz else datetime.now()


def _forget_use_tz(*, setting: str, **kwargs: Any) -> None:
    global _use_tz
    if setting == "USE_TZ":
        _use_tz = None


setting_changed.connect(_forget_use_tz, dispatch_uid="vtasks.outcomes.forget_use_tz")


def error_record(exc: BaseException) -> dict[str, str]:
    cls = type(exc)
    return {
        "exception_class_path": f"{cls.__module__}.{cls.__qualname__}",
        "traceback": "".join(traceback.format_exception(exc)),
    }


def timeout_error(timeout: float) -> TaskTimeout:
    return TaskTimeout(f"the attempt ran past its timeout of {timeout:g}s")


def failure(
    backend: Any, task: DjangoTask, claim: Claim, result: TaskResult, exc: BaseException
) -> Outcome:
    """Record the failed attempt on ``result`` and decide: retry (READY) or dead letter (FAILED)."""
    now = _now()
    error = error_record(exc)
    result.errors.append(TaskError(**error))
    backoff = backend.backoff_for(task) if hasattr(backend, "backoff_for") else None
    delay = retry_delay(backoff, exc, result, claim.attempt, claim.max_attempts)
    if delay is None:
        object.__setattr__(result, "status", TaskResultStatus.FAILED)
        object.__setattr__(result, "finished_at", now)
        return Outcome(
            claim=claim, status="FAILED", finished_at=now, error=error,
            expires_at=expiry(backend.options.get("FAILED_RESULT_TTL"), now),
        )  # fmt: skip
    object.__setattr__(result, "status", TaskResultStatus.READY)
    return Outcome(
        claim=claim,
        status="READY",
        finished_at=now,
        error=error,
        retry_at=now + timedelta(seconds=delay),
    )


def success(
    backend: Any, task: DjangoTask, claim: Claim, result: TaskResult | None, value: Any, text: str
) -> Outcome:
    """``value``: the normalised return value; ``text``: it as JSON (``codec.encode_return``).
    ``result``: the attempt's ``TaskResult``, updated; ``None`` when none was built."""
    now = _now()
    if result is not None:
        object.__setattr__(result, "status", TaskResultStatus.SUCCESSFUL)
        object.__setattr__(result, "finished_at", now)
        object.__setattr__(result, "_return_value", value)
    ttl = claim.options.get("result_ttl")
    # claim, status, finished_at, return_value, error, retry_at, expires_at: in order, once per
    # task (keywords cost CPython more than the rest of the construction).
    return Outcome(claim, "SUCCESSFUL", now, text, None, None, expiry(ttl, now))


def unknown_backend(alias: str) -> UnknownTask:
    return UnknownTask(f"the message names the backend {alias!r}, which is not a TASKS alias")


def unrunnable(backend: Any | None, claim: Claim, exc: Exception) -> Outcome:
    """A message that names no runnable task fails at once: retrying cannot help."""
    now = _now()
    ttl = backend.options.get("FAILED_RESULT_TTL") if backend is not None else None
    expires_at = expiry(ttl, now)
    return Outcome(
        claim=claim,
        status="FAILED",
        finished_at=now,
        error=error_record(exc),
        expires_at=expires_at,
    )


def expiry(ttl: float | None, now: datetime) -> datetime | None:
    return None if ttl is None else now + timedelta(seconds=ttl)
