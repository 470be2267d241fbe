"""Property tests (hypothesis): whatever bytes or documents arrive, the decoders and the YAML
loader answer with their own clear error, never with another exception.

A worker survives one bad message only if decoding it fails in the way the worker expects
(``EnvelopeError``, or a ``Claim`` carrying its ``problem``); the supervisor refuses a bad file
only if loading it raises ``ConfigError``.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from tests.strategies import FUZZ, json_values
from vtasks.config import env, loader, sources
from vtasks.core.errors import ConfigError, EnvelopeError
from vtasks.drivers.base import Claim
from vtasks.drivers.valkey.records import build_claim, decode_message, to_us
from vtasks.wire import envelope

#: Message bodies: the real field names with values of any JSON type, and stray keys.
BODY_KEYS = ["task_path", "backend", "queue_name", "priority", "args", "kwargs", "run_after",
             "enqueued_at", "options"]  # fmt: skip
bodies = st.dictionaries(st.sampled_from(BODY_KEYS) | st.text(max_size=8), json_values, max_size=10)


def _decodes_or_refuses(message: bytes) -> None:
    try:
        envelope.decode(message)
    except EnvelopeError as exc:
        assert str(exc)


# -- the envelope ----------------------------------------------------------------------------
@FUZZ
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_envelope_error(message: bytes) -> None:
    _decodes_or_refuses(message)


@FUZZ
@given(st.sampled_from([0, envelope.ZSTD]), st.binary(max_size=300))
def test_any_body_behind_a_valid_header_decodes_or_raises_envelope_error(
    flags: int, body: bytes
) -> None:
    _decodes_or_refuses(bytes((envelope.VERSION, flags)) + body)


@FUZZ
@given(st.binary(max_size=300), st.booleans())
def test_any_zstd_frame_decodes_or_raises_envelope_error(payload: bytes, sized: bool) -> None:
    frame = zstandard.ZstdCompressor(write_content_size=sized).compress(payload)
    _decodes_or_refuses(bytes((envelope.VERSION, envelope.ZSTD)) + frame)


@FUZZ
@given(json_values)
def test_any_json_value_round_trips(value: Any) -> None:
    for threshold in (0, 1 << 20):
        assert envelope.decode(envelope.encode(value, threshold=threshold)) == value


@pytest.mark.parametrize(
    ("sized", "reason"),
    [(True, "would decompress to 67108867 bytes"), (False, "does not decompress")],
)
def test_a_zip_bomb_is_refused_whether_or_not_it_states_its_size(sized: bool, reason: str) -> None:
    data = b"[" + b"0," * (envelope.MAX_BODY // 2) + b"0]"  # 3 bytes over the cap
    bomb = zstandard.ZstdCompressor(write_content_size=sized).compress(data)
    with pytest.raises(EnvelopeError, match=reason):
        envelope.decode(bytes((envelope.VERSION, envelope.ZSTD)) + bomb)


# -- Valkey task hashes ------------------------------------------------------------------------
@FUZZ
@given(st.none() | st.binary(max_size=200))
def test_any_stored_msg_decodes_to_a_body_and_its_problems(msg: bytes | None) -> None:
    body, problems = decode_message(msg)
    assert isinstance(body, dict) and isinstance(problems, list)
    assert problems or {"args", "kwargs", "options"} <= body.keys()


def _row(msg: bytes, worker_ids: bytes = b"[]", errors: bytes = b"[]") -> list[Any]:
    return [b"0123abcd", msg, b"0", worker_ids, errors, b"", b"3", b""]


@FUZZ
@given(st.binary(max_size=200) | bodies.map(envelope.encode), st.binary(max_size=40),
       st.binary(max_size=40))  # fmt: skip
def test_any_claimed_row_becomes_a_claim_naming_its_problem(
    msg: bytes, worker_ids: bytes, errors: bytes
) -> None:
    claim = build_claim(_row(msg, worker_ids, errors), "default", "p-1", datetime.now(UTC))
    assert isinstance(claim, Claim) and claim.id == "0123abcd" and claim.attempt == 1
    assert isinstance(claim.args, list) and isinstance(claim.kwargs, dict)
    assert claim.problem is None or claim.problem.startswith("stored task data cannot be decoded")


@pytest.mark.parametrize("field", ["run_after", "enqueued_at"])
@pytest.mark.parametrize("value", [10**19, -(2**63), 2**64 - 1])
def test_a_time_out_of_range_in_a_message_does_not_break_the_claim(field: str, value: int) -> None:
    body = {"task_path": "tests.tasks.add", "args": [], "kwargs": {}, "options": {}, field: value}
    claim = build_claim(_row(envelope.encode(body)), "default", "p-1", datetime.now(UTC))
    assert claim.task_path == "tests.tasks.add"


# -- the YAML loader ---------------------------------------------------------------------------
KEYS = ["backend", "workers", "name", "queues", "concurrency", "processes", "scheduler",
        "enabled", "schedules", "task", "cron", "every", "metrics", "port", "address",
        "health_file", "heartbeat_interval", "alive_threshold", "shutdown_timeout", "log_format",
        "django_settings"]  # fmt: skip
yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=4),
    max_leaves=25,
)  # fmt: skip


def _load_text(text: str) -> None:
    """Load ``text`` as the topology file: a valid topology or a ``ConfigError`` with a message."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vtasks.yml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            loader.load([sources.defaults(), sources.yaml_file(path)])
        except ConfigError as exc:
            assert str(exc).strip()


@FUZZ
@given(st.text(max_size=200))
def test_any_text_loads_or_raises_config_error(text: str) -> None:
    _load_text(text)


@FUZZ
@given(st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), yaml_values, max_size=6))
def test_any_document_loads_or_raises_config_error(document: dict[str, Any]) -> None:
    _load_text(yaml.safe_dump(document, allow_unicode=True))


@FUZZ
@given(st.dictionaries(st.sampled_from(sorted(env.TOPOLOGY_VARS)), st.text(max_size=12)))
def test_any_environment_loads_or_raises_config_error(environ: dict[str, str]) -> None:
    try:
        loader.load([sources.defaults(), sources.environment(environ)])
    except ConfigError as exc:
        assert str(exc).strip()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: &a [*a]\n", "too large"),  # an alias inside itself
        ("[" * 5000 + "]" * 5000, "nested too deeply"),
        (  # a billion laughs: nine levels of ten aliases each
            "a0: &a0 [x]\n"
            + "".join(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 10)),
            "too large",
        ),
    ],
    ids=["recursive-alias", "deep-nesting", "billion-laughs"],
)
def test_hostile_yaml_is_refused_with_config_error(text: str, message: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vtasks.yml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            sources.yaml_file(path)


def test_a_json_body_that_is_not_an_object_is_a_problem() -> None:
    body, problems = decode_message(envelope.encode(["task_path"]))
    assert body == {"args": [], "kwargs": {}, "options": {}}
    assert problems == ["message: message body is a JSON list, not an object"]
    assert orjson.loads(b"{}") == {}


@FUZZ
@given(st.binary(max_size=200) | bodies.map(envelope.encode))
def test_a_first_attempts_short_row_is_the_claim_its_full_row_gives(msg: bytes) -> None:
    """``claim.lua`` returns a first attempt (no unique key) as id, message and max_attempts."""
    now = datetime.now(UTC)
    now_us = b"%d" % to_us(now)
    full = [b"0123abcd", msg, b"0", b"", b"[]", now_us, b"3", b""]
    short = build_claim([b"0123abcd", msg, b"3"], "default", "p-1", now, now_us)
    assert short == build_claim(full, "default", "p-1", now, now_us)
    assert short.attempt == 1 and short.worker_ids == ["p-1"] and short.errors == []
    assert short.started_at is now and short.unique_key is None and short.max_attempts == 3
