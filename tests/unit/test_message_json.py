"""The Valkey message body, put together from JSON encoded already, is byte for byte what
``orjson`` makes of the same fields as one object: every reader of a stored message sees the
format it always saw.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies import FUZZ, json_values
from vtasks.drivers.valkey.records import decode_message, message_json
from vtasks.wire import codec, envelope

PROPERTY = settings(FUZZ, max_examples=100)  # fewer than FUZZ: each example builds many names

#: Names with what JSON must escape: quotes, backslashes, control characters, non-ASCII.
names = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=24)
times = st.none() | st.integers(min_value=0, max_value=2**62)
options = st.dictionaries(st.sampled_from(["timeout", "result_ttl", "concurrency"]),
                          st.integers(0, 10**6) | st.floats(0, 1e6) | st.text(max_size=8))  # fmt: skip


def _as_one_object(
    task_path: str, backend: str, queue: str, priority: int, args: list[Any],
    kwargs: dict[str, Any], run_after: int | None, enqueued_at: int, options_json: str,
) -> bytes:  # fmt: skip
    return orjson.dumps({
        "task_path": task_path, "backend": backend, "queue_name": queue, "priority": priority,
        "args": args, "kwargs": kwargs, "run_after": run_after, "enqueued_at": enqueued_at,
        "options": orjson.Fragment(options_json),
    })  # fmt: skip


@PROPERTY
@given(names, names, names, st.integers(-100, 100), st.lists(json_values, max_size=4),
       st.dictionaries(st.text(max_size=8), json_values, max_size=4), times,
       st.integers(min_value=0, max_value=2**62), options)  # fmt: skip
def test_the_body_is_what_orjson_makes_of_the_fields_as_one_object(
    task_path: str, backend: str, queue: str, priority: int, args: list[Any],
    kwargs: dict[str, Any], run_after: int | None, enqueued_at: int, opts: dict[str, Any],
) -> None:  # fmt: skip
    args_json, kwargs_json = codec.arguments_json(args, kwargs)
    options_json = codec.dumps(opts)
    body = message_json(task_path, backend, queue, priority, args_json, kwargs_json, run_after,
                        enqueued_at, options_json)  # fmt: skip
    assert body == _as_one_object(task_path, backend, queue, priority, args, kwargs, run_after,
                                  enqueued_at, options_json)  # fmt: skip
    decoded, problems = decode_message(envelope.wrap(body, threshold=64))
    assert problems == []
    assert decoded["args"] == args and decoded["kwargs"] == kwargs
    assert (decoded["task_path"], decoded["queue_name"], decoded["run_after"]) == (
        task_path, queue, run_after,
    )  # fmt: skip


def test_the_argument_size_is_that_of_the_arguments_json() -> None:
    args_json, kwargs_json = codec.arguments_json(["é", 1], {})
    assert (args_json, kwargs_json) == ('["é",1]'.encode(), b"{}")
    assert codec.arguments_json([], {"a": [None]}) == (b"[]", b'{"a":[null]}')


def test_a_large_body_is_compressed_and_reads_back() -> None:
    args_json, kwargs_json = codec.arguments_json(["x" * 5000], {})
    body = message_json("app.tasks.t", "default", "q", 0, args_json, kwargs_json, None, 1, "{}")
    message = envelope.wrap(body, threshold=1024)
    assert message[1] == envelope.ZSTD and len(message) < len(body)
    assert envelope.decode(message)["args"] == ["x" * 5000]
