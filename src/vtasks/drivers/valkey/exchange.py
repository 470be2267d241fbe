"""Send a few commands on one connection of a (non-cluster) client and read every reply.

The enqueue side's hot path is one short round trip per call. Going through valkey-py's pipeline
object there cost more than the round trip itself: a pool checkout that polls the socket for stray
data, the pipeline's command stack and reset, and a response-callback lookup per reply (about
50 µs of a 165 µs ``enqueue``). Here each thread keeps one connection made like the client's
pool makes them (valkey-py's ``Connection`` with the pool's settings: its packing, parsing, TLS
and auth) but owned by the thread, not the pool: when the thread ends, the connection is
collected and its socket closed (a web server's short-lived threads leak nothing). The commands go
out packed together and the replies are read in order. An error reply is returned in its place, as a
non-raising pipeline does.

A connection error before anything was sent is retried once on a fresh connection; after sending,
the error is raised (the commands may have run), after the connection is dropped so the next call
starts clean. A cluster client keeps using its own pipeline, which routes by slot.

A command may come already packed (``bytes`` in the wire format): the enqueue side packs the
parts of its commands that never change once per queue (see ``Packed``).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from valkey.exceptions import ConnectionError, ResponseError, TimeoutError

_held = threading.local()


#: Packed commands go out once this many bytes wait (and at the end): a bulk enqueue's first
#: chunks then run on the server while the next ones are still being encoded here. The first
#: send goes at ``FIRST_SEND_AT``: the server starts on a small first command sooner (a single
#: short command, the usual enqueue, still goes out in one send with what follows it).
SEND_AT = 32 * 1024
FIRST_SEND_AT = 4 * 1024
#: valkey-py's asyncio connections' ``socket_timeout`` when the pool does not set one.
_DEFAULT_SOCKET_TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Packed:
    """A command and its wire form, made once: an exchange sends ``data``, a pipeline (a
    cluster's) takes ``command``."""

    command: tuple[Any, ...]
    data: bytes


#: A command as ``exchange`` takes it: its words and values, or already packed.
Command = Sequence[Any] | bytes


def pack(*command: str | bytes | int) -> Packed:
    """``command`` and its wire form (a RESP array of bulk strings, as valkey-py packs it)."""
    return Packed(command, b"*%d\r\n%b" % (len(command), bulk(command)))


def bulk(values: Iterable[str | bytes | int]) -> bytes:
    """``values`` as RESP bulk strings, without the array's header: text as UTF-8, integers in
    decimal (the parts of a command that are packed ahead of the rest)."""
    parts = []
    for value in values:
        if type(value) is str:
            data = value.encode()
        elif type(value) is int:
            data = b"%d" % value
        elif type(value) is bytes:
            data = value
        else:
            raise TypeError(f"cannot pack a {type(value).__name__} (str, bytes or int only)")
        parts.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(parts)


def exchange(
    client: Any, commands: Iterable[Command], meanwhile: Callable[[], None] | None = None
) -> list[Any]:
    """The replies of ``commands`` (an error reply as its ``ResponseError``), in order.

    ``commands`` may be a generator: each is packed as it comes and sent in batches of about
    ``SEND_AT`` bytes, so building the next commands overlaps with the server running the last.
    ``meanwhile`` runs once everything is sent, before the replies are read: client work that
    overlaps with the server running the last commands.
    """
    connection = _connection(client)
    pending: list[bytes] = []
    size = count = 0
    sent_any = False
    send_at = FIRST_SEND_AT
    for command in commands:
        if type(command) is bytes:
            pending.append(command)
            size += len(command)
        else:
            packed = connection.pack_command(*command)
            pending += packed
            size += sum(map(len, packed))
        count += 1
        if size >= send_at:
            connection = _send(client, connection, pending, retry=not sent_any)
            sent_any, pending, size, send_at = True, [], 0, SEND_AT
    if pending:
        connection = _send(client, connection, pending, retry=not sent_any)
    replies: list[Any] = []
    try:
        if meanwhile is not None:
            meanwhile()
        parser = _parser(connection)
        if parser is None:  # not valkey-py's connection class: through its public API
            for _ in range(count):
                try:
                    replies.append(connection.read_response())
                except ResponseError as error:
                    replies.append(error)
        else:
            # Straight from the parser, which returns an error reply in its place: the
            # connection's ``read_response`` formats the server's address for a possible error
            # and raises the error reply to be caught here. A single enqueue costs the client
            # 130,000 instructions so, against 139,000 (callgrind).
            for _ in range(count):
                replies.append(parser.read_response())
    except OSError as error:  # a reset or refused socket (a timeout the parser has translated)
        connection.disconnect()
        raise ConnectionError(f"Error while reading from the server: {error}") from error
    except BaseException:
        connection.disconnect()  # unread replies would answer the next caller's commands
        raise
    return replies


def _parser(connection: Any) -> Any:
    """valkey-py's reply parser of a sync ``connection``; ``None`` for another connection class."""
    return getattr(connection, "_parser", None)


def _send(client: Any, connection: Any, packed: list[bytes], *, retry: bool) -> Any:
    """Send ``packed``; a connection error before anything of this exchange went out is retried
    once on a fresh connection (nothing can have run). Returns the connection used."""
    data = b"".join(packed)  # one send: piece by piece, small writes would wait on Nagle
    try:
        connection.send_packed_command([data], check_health=False)
    except (ConnectionError, TimeoutError, OSError):
        connection.disconnect()
        if not retry:
            raise
        connection = _connection(client)
        connection.send_packed_command([data], check_health=False)
    return connection


def _connection(client: Any) -> Any:
    """This thread's connection for ``client``'s pool (a new one after ``fork()``)."""
    pool = client.connection_pool
    pid = os.getpid()
    held: dict[int, tuple[Any, Any]] | None = getattr(_held, "connections", None)
    if held is None or getattr(_held, "pid", None) != pid:
        held = _held.connections = {}
        _held.pid = pid
    entry = held.get(id(pool))
    if entry is None or entry[0] is not pool:
        entry = held[id(pool)] = (pool, pool.connection_class(**pool.connection_kwargs))
    connection = entry[1]
    connection.connect()  # a no-op while connected; reconnects after a disconnect
    return connection


class AsyncExchange:
    """``exchange`` for an asyncio client: connections of its pool's kind, owned by this object.

    Each exchange takes an idle connection (or makes one), sends, reads every reply and puts it
    back; concurrent exchanges (the worker's claims and finishes overlap) use different
    connections, so replies never interleave. A connection that failed or was cancelled mid-way
    is dropped: unread replies would answer someone else's commands. ``aclose`` closes them all.

    The pool's ``socket_timeout`` (valkey-py's default: 5 s) bounds the whole exchange, in one
    ``asyncio.timeout``: valkey-py would open one per send and one per reply (an ``aenqueue``
    cost the client 348,000 instructions so, against 402,000; callgrind). The connections
    themselves get none; their connect timeout stays what it was. A connection the server
    closed while it sat idle is replaced before anything is sent on it.
    """

    def __init__(self, client: Any, *, timeout: float | None = None) -> None:
        """``timeout``: seconds one exchange may take, instead of the pool's ``socket_timeout``
        (a blocking pop's lane needs longer than its pop blocks)."""
        self.pool = client.connection_pool
        kwargs = dict(self.pool.connection_kwargs)
        timeout = timeout or kwargs.get("socket_timeout", _DEFAULT_SOCKET_TIMEOUT)
        #: Seconds one exchange may take, sending to last reply (``None``: no limit).
        self.timeout: float | None = timeout
        if kwargs.get("socket_connect_timeout") is None:  # a connection falls back to this
            kwargs["socket_connect_timeout"] = timeout
        kwargs["socket_timeout"] = None
        self._connection_kwargs = kwargs
        self._idle: list[Any] = []

    async def exchange(self, commands: Sequence[Command]) -> list[Any]:
        connection = self._idle.pop() if self._idle else self._new()
        deadline = asyncio.timeout(self.timeout)
        try:
            async with deadline:
                data = b"".join(_pack_all(connection, commands))
                try:
                    await _asend(connection, data)
                except (ConnectionError, TimeoutError, OSError):
                    await connection.disconnect(nowait=True)  # nothing was sent: afresh, once
                    connection = self._new()
                    await _asend(connection, data)
                replies = await _areplies(connection, len(commands))
        except BaseException:
            await connection.disconnect(nowait=True)
            if deadline.expired():
                raise TimeoutError(f"no reply within {self.timeout:g}s") from None
            raise
        self._idle.append(connection)
        return replies

    def _new(self) -> Any:
        return self.pool.connection_class(**self._connection_kwargs)

    async def aclose(self) -> None:
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.disconnect()


async def _asend(connection: Any, data: bytes) -> None:
    """Send ``data`` on an asyncio connection, connecting it first when it is not connected.

    With valkey-py's stream-based connections this writes to the stream itself: their
    ``send_packed_command`` goes through ``writelines`` and its checks, and with the reads below
    an ``aenqueue`` costs the client 252,000 instructions instead of 277,000 on asyncio's own
    loop, 207,000 instead of 211,000 under uvloop (callgrind, ``PYTHONHASHSEED=0``). Any other
    connection class sends its own way."""
    if not connection.is_connected:
        await connection.connect()
    streams = _streams(connection)
    if streams is None:
        await connection.send_packed_command([data], check_health=False)
        return
    reader, writer, _ = streams
    if reader.at_eof() or writer.transport.is_closing():
        # The server closed it while it sat idle (a restart, CLIENT KILL, its idle timeout):
        # nothing of this exchange went out, so the caller may safely retry on a new one.
        raise ConnectionError("the server closed this connection while it was idle")
    writer.write(data)
    await writer.drain()  # waits only while the transport's buffer is over its high-water mark


async def _areplies(connection: Any, count: int) -> list[Any]:
    """The next ``count`` replies on ``connection``, an error reply in its place (as in a
    non-raising pipeline). Straight from valkey-py's parser where it has one: its connection's
    ``read_response`` formats the server's address for a possible error on every call."""
    replies: list[Any] = []
    streams = _streams(connection)
    if streams is None:
        for _ in range(count):
            try:
                replies.append(await connection.read_response())
            except ResponseError as error:
                replies.append(error)
        return replies
    parser = streams[2]
    try:
        for _ in range(count):
            replies.append(await parser.read_response())
    except OSError as error:
        raise ConnectionError(f"Error while reading from the server: {error}") from error
    return replies


def _streams(connection: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Any] | None:
    """A connected valkey-py asyncio connection's stream reader, writer and reply parser."""
    reader = getattr(connection, "_reader", None)
    writer = getattr(connection, "_writer", None)
    parser = getattr(connection, "_parser", None)
    if reader is None or writer is None or parser is None:
        return None
    return reader, writer, parser


def _pack_all(connection: Any, commands: Sequence[Command]) -> list[bytes]:
    """``commands`` packed for one send (those packed already as they are)."""
    if not any(type(command) is bytes for command in commands):
        return connection.pack_commands(commands)  # type: ignore[no-any-return]
    return [
        part
        for command in commands
        for part in ([command] if type(command) is bytes else connection.pack_command(*command))
    ]
