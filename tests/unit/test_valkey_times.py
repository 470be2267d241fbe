"""Stored times: integer microseconds since the epoch, converted exactly both ways."""

import random
from datetime import UTC, datetime, timedelta

from vtasks.drivers.valkey.records import _FLOAT_EXACT_BELOW, EPOCH, from_us, to_us


def _slow(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def test_microseconds_convert_exactly_both_ways_on_the_float_path_and_beyond() -> None:
    rng = random.Random(20261122)
    values = [rng.randrange(_FLOAT_EXACT_BELOW) for _ in range(100_000)]
    values += [0, 1, 999_999, 1_000_000, _FLOAT_EXACT_BELOW - 1, _FLOAT_EXACT_BELOW]
    values += [rng.randrange(_FLOAT_EXACT_BELOW, 253_402_300_799_999_999) for _ in range(1_000)]
    for value in values:
        when = from_us(value)
        assert when == _slow(value) and when is not None and when.tzinfo is UTC, value
        assert to_us(when) == value


def test_stored_text_converts_and_malformed_values_become_none() -> None:
    assert from_us(b"1763850000123456") == datetime(2025, 11, 22, 22, 20, 0, 123456, tzinfo=UTC)
    assert from_us("17") == EPOCH + timedelta(microseconds=17)
    assert from_us(-5) == EPOCH - timedelta(microseconds=5)
    for bad in (None, b"", b"x", "1.5", 1.5, True, 10**20, [1]):
        assert from_us(bad) is None, bad
