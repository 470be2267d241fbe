"""Pure conversions between Valkey task hashes and the values around them.

A task is one hash: the immutable call as an envelope (``msg``: task path, backend, queue,
priority, arguments, run_after, enqueued_at, options) plus its mutable state as plain fields
(status, attempts, claimed_by, worker_ids and errors as JSON text, times as integer microseconds
since the epoch: exact in a sorted-set score and comparable inside Lua).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from vtasks.core.errors import EnvelopeError
from vtasks.drivers.base import Claim, Outcome
from vtasks.wire import codec, envelope

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
#: Microsecond counts below this (2106-02-07) convert through a float exactly: the float's error
#: stays under a quarter of a microsecond, and ``fromtimestamp`` rounds to the nearest one. It
#: takes a fifth of the time of ``EPOCH + timedelta(microseconds=...)``, twice per task.
_FLOAT_EXACT_BELOW = 2**32 * 1_000_000
_fromtimestamp = datetime.fromtimestamp


def to_us(value: datetime) -> int:
    delta = value - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: Any) -> datetime | None:
    """The time of a stored microsecond count; ``None`` for a missing or malformed one."""
    if type(value) is not int:
        if isinstance(value, (bytes, str)):
            try:
                value = int(value)
            except ValueError:
                return None
        elif not isinstance(value, int) or isinstance(value, bool):
            return None
    if 0 <= value < _FLOAT_EXACT_BELOW:
        return _fromtimestamp(value / 1_000_000, UTC)
    try:
        return EPOCH + timedelta(microseconds=value)
    except OverflowError:  # a corrupt message: past year 9999
        return None


def message_json(
    task_path: str, backend: str, queue_name: str, priority: int, args_json: bytes,
    kwargs_json: bytes, run_after_us: int | None, enqueued_at_us: int, options_json: str,
) -> bytes:  # fmt: skip
    """A message's body as JSON: the object ``orjson`` makes of the fields in this order (times as
    integer microseconds), put together from JSON encoded already. The arguments' JSON comes
    from the payload check, and the fields one task shares are encoded once per task: encoding
    the whole object again cost more than the rest of building the message."""
    head, tail = body_parts(task_path, backend, queue_name, priority, run_after_us, enqueued_at_us)
    return b"".join((head, args_json, KWARGS_FIELD, kwargs_json, tail, options_json.encode(), b"}"))


#: A body's text between its arguments' JSON and its keyword arguments' JSON.
KWARGS_FIELD = b',"kwargs":'


def body_parts(
    task_path: str, backend: str, queue_name: str, priority: int, run_after_us: int | None,
    enqueued_at_us: int,
) -> tuple[bytes, bytes]:  # fmt: skip
    """A body's text before its arguments' JSON, and from its keyword arguments' JSON to its
    options' JSON: the same for every message of one task enqueued at one time."""
    run_after = b"null" if run_after_us is None else b"%d" % run_after_us
    tail = b',"run_after":%b,"enqueued_at":%d,"options":' % (run_after, enqueued_at_us)
    return _body_head(task_path, backend, queue_name, priority), tail


@functools.lru_cache(maxsize=1024)
def _body_head(task_path: str, backend: str, queue_name: str, priority: int) -> bytes:
    """The body's text up to its arguments' JSON."""
    return b'{"task_path":%b,"backend":%b,"queue_name":%b,"priority":%d,"args":' % (
        orjson.dumps(task_path), orjson.dumps(backend), orjson.dumps(queue_name), priority,
    )  # fmt: skip


_BODY_TYPES: dict[str, type] = {"args": list, "kwargs": dict, "options": dict}
_TEXT_TYPES: dict[str, type] = {"worker_ids": list, "errors": list}


def decode_message(msg: bytes | None) -> tuple[dict[str, Any], list[str]]:
    """The message body with its call fields checked, and what is wrong with it (if anything)."""
    try:
        body = envelope.decode(msg or b"")
        if not isinstance(body, dict):
            raise EnvelopeError(f"message body is a JSON {type(body).__name__}, not an object")
    except EnvelopeError as exc:
        return {name: kind() for name, kind in _BODY_TYPES.items()}, [f"message: {exc}"]
    get = body.get
    if type(get("args")) is list and type(get("kwargs")) is dict and type(get("options")) is dict:
        return body, []  # the usual message: no loop over the fields
    problems = []
    for name, kind in _BODY_TYPES.items():
        value = body.get(name)
        if not isinstance(value, kind):
            problems.append(f"{name}: expected a JSON {kind.__name__}, got {type(value).__name__}")
            body[name] = kind()
    return body, problems


def decode_text(name: str, raw: bytes | str | None) -> tuple[Any, str | None]:
    """A JSON-text state field (worker_ids, errors); a malformed one becomes empty and is named."""
    if raw == b"[]":  # the usual first attempt: no parse
        return [], None
    kind = _TEXT_TYPES[name]
    try:
        value = codec.loads(raw) if raw else kind()
        if not isinstance(value, kind):
            raise ValueError(f"expected a JSON {kind.__name__}")
    except ValueError as exc:
        return kind(), f"{name}: {exc}"
    return value, None


def build_claim(
    row: list[Any], queue: str, process_id: str, now: datetime, now_us: bytes = b""
) -> Claim:
    """A ``Claim`` from one row of ``claim.lua``; undecodable data is named in ``problem``.

    ``now_us`` is ``now`` as sent to the script: a first attempt's start is exactly that, so it
    needs no conversion back. A first attempt's row is its id, message and max_attempts alone.
    """
    body, problems = decode_message(row[1])
    if len(row) == 3:
        task_id, _, max_attempts = row
        attempts, started, unique_key = 0, now_us, None
        before: list[Any] = []
        earlier: list[Any] = []
    else:
        task_id, _, attempts, worker_ids, errors, started, max_attempts, unique_key = row
        before, problem = decode_text("worker_ids", worker_ids)
        if problem:
            problems.append(problem)
        earlier, problem = decode_text("errors", errors)
        if problem:
            problems.append(problem)
    get = body.get
    task_path, backend, priority, run_after = (
        get("task_path"), get("backend"), get("priority"), get("run_after")
    )  # fmt: skip
    return Claim(  # in field order (see ``Claim``)
        task_id.decode(),  # id
        task_path if type(task_path) is str else str(task_path or ""),
        queue,  # queue_name
        priority if type(priority) is int else 0,  # bool, float or missing: the default
        body["args"],
        body["kwargs"],
        backend if type(backend) is str else str(backend or ""),
        None if run_after is None else from_us(run_after),
        from_us(get("enqueued_at")) or now,  # enqueued_at
        now if started == now_us else from_us(started) or now,  # started_at
        now,  # last_attempted_at
        int(attempts) + 1,  # attempt
        int(max_attempts),
        [*before, process_id],  # worker_ids
        earlier,  # errors
        unique_key.decode() if unique_key else None,
        body["options"],
        f"stored task data cannot be decoded ({'; '.join(problems)})" if problems else None,
    )


def record_view(task_id: str, fields: dict[bytes, bytes]) -> dict[str, Any]:
    """A task hash as a mapping with the ``TaskRecord`` field names (for ``build_result``)."""

    def text(name: str) -> str | None:
        value = fields.get(name.encode())
        return value.decode() if value is not None else None

    body, _ = decode_message(fields.get(b"msg"))
    return {
        "id": task_id, "backend": body.get("backend"), "task_path": body.get("task_path"),
        "queue_name": body.get("queue_name"), "priority": body.get("priority"),
        "status": text("status"), "args": body.get("args"), "kwargs": body.get("kwargs"),
        "options": body.get("options"), "run_after": from_us(body.get("run_after")),
        "enqueued_at": from_us(body.get("enqueued_at")),
        "available_at": from_us(fields.get(b"available_at")),
        "started_at": from_us(fields.get(b"started_at")),
        "last_attempted_at": from_us(fields.get(b"last_attempted_at")),
        "finished_at": from_us(fields.get(b"finished_at")),
        "expires_at": from_us(fields.get(b"expires_at")),
        "attempts": int(fields.get(b"attempts") or 0),
        "max_attempts": int(fields.get(b"max_attempts") or 1),
        "worker_ids": text("worker_ids") or "[]", "errors": text("errors") or "[]",
        "return_value": text("return_value"), "claimed_by": text("claimed_by"),
        "unique_key": text("unique_key"),
    }  # fmt: skip


#: How many values ``finish.lua`` takes for a plain success (``plain_success``); 9 for the rest.
PLAIN_SUCCESS_VALUES = 4


def plain_success(outcome: Outcome) -> list[Any] | None:
    """``finish.lua``'s four values for a success kept with no expiry (the claimer is sent once
    per call), or ``None`` for any other outcome (``outcome_args``)."""
    if outcome.status != "SUCCESSFUL" or outcome.expires_at is not None:
        return None
    claim = outcome.claim
    return [claim.id, claim.attempt, to_us(outcome.finished_at), outcome.return_value or ""]


def outcome_args(outcome: Outcome, process_id: str) -> list[Any]:
    """``finish.lua``'s nine values for one outcome."""
    claim = outcome.claim
    errors = claim.errors + [outcome.error] if outcome.error else claim.errors
    final = outcome.status != "READY"
    at = outcome.finished_at if final else (outcome.retry_at or outcome.finished_at)
    expires = outcome.expires_at if final else None
    drop = expires is not None and expires <= outcome.finished_at
    return [
        claim.id, process_id, claim.attempt, outcome.status, codec.dumps(errors), to_us(at),
        outcome.return_value if outcome.status == "SUCCESSFUL" and outcome.return_value else "",
        to_us(expires) if expires is not None else "", "1" if drop else "0",
    ]  # fmt: skip
