"""The stored message envelope: header, compression above the threshold, strict decoding."""

from __future__ import annotations

import orjson
import pytest

from vtasks.core.errors import EnvelopeError
from vtasks.wire import envelope


def test_small_bodies_stay_plain_and_round_trip():
    body = {"task_path": "a.b", "args": [1, "x"], "kwargs": {}}
    message = envelope.encode(body, threshold=1024)
    assert message[:2] == bytes((envelope.VERSION, 0)) and message[2:] == orjson.dumps(body)
    assert envelope.decode(message) == body


def test_large_bodies_are_compressed_and_round_trip():
    body = {"args": ["x" * 5000]}
    message = envelope.encode(body, threshold=1024)
    assert message[1] == envelope.ZSTD and len(message) < 1000
    assert envelope.decode(message) == body


def test_the_threshold_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv(envelope.COMPRESS_THRESHOLD_ENV, "10")
    envelope.compress_threshold.cache_clear()
    try:
        assert envelope.encode({"args": ["y" * 20]})[1] == envelope.ZSTD
    finally:
        envelope.compress_threshold.cache_clear()


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (b"", "no envelope header"),
        (b"\x01", "no envelope header"),
        (b"\x02\x00{}", "version 2 is not supported"),
        (b"\x01\x80{}", "unknown flags 0x80"),
        (b"\x01\x00{not json", "not JSON"),
        (b"\x01\x01not zstd", "does not decompress"),
        (b"\x80\x04\x95pickle", "version 128"),
    ],
)
def test_strict_decoding_names_what_is_wrong(message, reason):
    with pytest.raises(EnvelopeError, match=reason):
        envelope.decode(message)
