"""The stored message: one version byte, one flags byte, then an orjson body (zstd above a threshold).

Why a header at all: a message outlives the code that wrote it (a delayed task, a dead letter), so
the reader must know how it was written before it reads a byte of the body. Unknown versions or
flags are refused rather than guessed at; no pickle, no eval, and decompression is capped so a
hostile or corrupt message cannot balloon in memory. Small messages stay uncompressed: zstd costs
more than it saves below about a kilobyte.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import orjson

from vtasks.config import env
from vtasks.core.errors import EnvelopeError

VERSION = 1
#: Flag bit: the body is a zstd frame.
ZSTD = 0x01
KNOWN_FLAGS = ZSTD
#: Environment variable: bodies larger than this many bytes are compressed (default 1024).
COMPRESS_THRESHOLD_ENV = env.COMPRESS_THRESHOLD
DEFAULT_COMPRESS_THRESHOLD = 1024
#: A decompressed body larger than this is refused (a zip bomb, or not our message).
MAX_BODY = 64 * 1024 * 1024


@functools.cache
def compress_threshold() -> int:
    """The threshold from the environment, read once per process."""
    raw = os.environ.get(COMPRESS_THRESHOLD_ENV)
    if raw is None:
        return DEFAULT_COMPRESS_THRESHOLD
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(
            f"{COMPRESS_THRESHOLD_ENV} must be a whole number of bytes, got {raw!r}"
        ) from None
    return max(0, value)


_PLAIN = bytes((VERSION, 0))


def encode(body: Any, *, threshold: int | None = None) -> bytes:
    """Encode already-normalised JSON data as a message."""
    return wrap(orjson.dumps(body), threshold=threshold)


def wrap(data: bytes, *, threshold: int | None = None) -> bytes:
    """A message of ``data``, a body encoded as JSON already (compressed above the threshold)."""
    limit = compress_threshold() if threshold is None else threshold
    if len(data) > limit:
        import zstandard

        return bytes((VERSION, ZSTD)) + zstandard.ZstdCompressor().compress(data)
    return _PLAIN + data


def decode(message: bytes) -> Any:
    """Decode a message, or raise ``EnvelopeError`` saying what is wrong with it."""
    data = message[2:]
    if message[:2] != _PLAIN:  # the usual header needs no further look
        if len(message) < 2:
            raise EnvelopeError(f"message of {len(message)} byte(s) has no envelope header")
        version, flags = message[0], message[1]
        if version != VERSION:
            raise EnvelopeError(f"message version {version} is not supported (expected {VERSION})")
        if flags & ~KNOWN_FLAGS:
            raise EnvelopeError(f"message has unknown flags 0x{flags:02x}")
        if flags & ZSTD:
            data = _decompress(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"message body is not JSON: {exc}") from None


def _decompress(data: bytes) -> bytes:
    import zstandard

    try:
        # max_output_size binds only frames that do not state their size: a frame that does
        # is decompressed to whatever size it states, so that size is checked first.
        size = zstandard.frame_content_size(data)
        if size > MAX_BODY:
            raise EnvelopeError(f"message body would decompress to {size} bytes (cap {MAX_BODY})")
        return zstandard.ZstdDecompressor().decompress(data, max_output_size=MAX_BODY)
    except zstandard.ZstdError as exc:
        raise EnvelopeError(f"message body does not decompress: {exc}") from None
