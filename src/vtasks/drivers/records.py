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


def claim_from_row(row: dict[str, Any], process_id: str, now: datetime) -> tuple[Claim, dict[str, Any]]:
    """The claim a READY row becomes, and the column values that take it."""
    worker_ids = codec.loads(row["worker_ids"]) + [process_id]
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
        args=codec.loads(row["args"]),
        kwargs=codec.loads(row["kwargs"]),
        backend=row["backend"],
        run_after=row["run_after"],
        enqueued_at=row["enqueued_at"],
        started_at=started_at,
        last_attempted_at=now,
        attempt=row["attempts"] + 1,
        max_attempts=row["max_attempts"],
        worker_ids=worker_ids,
        errors=codec.loads(row["errors"]),
        unique_key=row["unique_key"],
        options=codec.loads(row["options"]) if row.get("options") else {},
    )
    return claim, changes
