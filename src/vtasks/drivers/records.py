"""Pure helpers shared by the SQL drivers: what an outcome or a lost worker writes to a record."""

from __future__ import annotations

import traceback
from datetime import datetime
from typing import Any

from vtasks.core.errors import WorkerLost
from vtasks.drivers.base import Claim, Outcome
from vtasks.wire import codec


def worker_lost_error(process_id: str) -> dict[str, str]:
    exc = WorkerLost(f"process {process_id} stopped heartbeating while running this task")
    return {
        "exception_class_path": f"{WorkerLost.__module__}.{WorkerLost.__qualname__}",
        "traceback": "".join(traceback.format_exception_only(exc)),
    }


def outcome_changes(outcome: Outcome) -> dict[str, Any]:
    """Column values an outcome writes (the fence is checked by the caller)."""
    claim = outcome.claim
    errors = claim.errors + [outcome.error] if outcome.error else claim.errors
    changes: dict[str, Any] = {
        "status": outcome.status,
        "claimed_by": None,
        "errors": codec.dumps(errors),
    }
    if outcome.status == "READY":
        changes["available_at"] = outcome.retry_at or outcome.finished_at
    else:
        changes["finished_at"] = outcome.finished_at
        changes["return_value"] = outcome.return_value
        changes["expires_at"] = outcome.expires_at
    return changes


def decode_stored(row: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """Decode a record's JSON columns; a column that does not decode is replaced and named.

    A malformed record must reach the executor (which fails it with the reason), never stop the
    claim that found it.
    """
    decoded: dict[str, Any] = {}
    problems = []
    for column, empty in _JSON_COLUMNS.items():
        raw = row.get(column)
        try:
            value = codec.loads(raw) if raw else empty
            if not isinstance(value, type(empty)):
                raise ValueError(f"expected a JSON {type(empty).__name__}")
        except ValueError as exc:
            problems.append(f"{column}: {exc}")
            value = type(empty)()
        decoded[column] = value
    problem = f"stored task data cannot be decoded ({'; '.join(problems)})" if problems else None
    return decoded, problem


_JSON_COLUMNS: dict[str, Any] = {
    "args": [],
    "kwargs": {},
    "worker_ids": [],
    "errors": [],
    "options": {},
}


def claim_from_row(
    row: dict[str, Any], process_id: str, now: datetime
) -> tuple[Claim, dict[str, Any]]:
    """The claim a READY row becomes, and the column values that take it."""
    stored, problem = decode_stored(row)
    worker_ids = stored["worker_ids"] + [process_id]
    started_at = row["started_at"] or now
    changes = {
        "status": "RUNNING",
        "claimed_by": process_id,
        "attempts": row["attempts"] + 1,
        "worker_ids": codec.dumps(worker_ids),
        "started_at": started_at,
        "last_attempted_at": now,
    }
    claim = Claim(
        id=row["id"],
        task_path=row["task_path"],
        queue_name=row["queue_name"],
        priority=row["priority"],
        args=stored["args"],
        kwargs=stored["kwargs"],
        backend=row["backend"],
        run_after=row["run_after"],
        enqueued_at=row["enqueued_at"],
        started_at=started_at,
        last_attempted_at=now,
        attempt=row["attempts"] + 1,
        max_attempts=row["max_attempts"],
        worker_ids=worker_ids,
        errors=stored["errors"],
        unique_key=row["unique_key"],
        options=stored["options"],
        problem=problem,
    )
    return claim, changes


def defer_changes(claim: Claim, until: datetime) -> dict[str, Any]:
    """Column values that undo ``claim`` (READY at ``until``, the attempt not counted)."""
    changes: dict[str, Any] = {
        "status": "READY",
        "claimed_by": None,
        "attempts": claim.attempt - 1,
        "worker_ids": codec.dumps(claim.worker_ids[:-1]),
        "available_at": until,
    }
    if claim.attempt <= 1:  # never started before this claim
        changes["started_at"] = None
        changes["last_attempted_at"] = None
    return changes
