"""The enqueue side's direct exchange: one thread-owned connection, replies in order, and a clean
recovery when the server drops the connection."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import warnings
from collections.abc import AsyncIterator, Iterator

import pytest
from valkey.exceptions import ConnectionError, ResponseError, TimeoutError

from vtasks.drivers.valkey import exchange as _exchange
from vtasks.drivers.valkey.client import new_async_client, sync_client
from vtasks.drivers.valkey.exchange import AsyncExchange, exchange


@pytest.fixture
def client(valkey: str) -> Iterator[object]:
    yield sync_client(os.environ["VTASKS_TEST_VALKEY_URL"])


@pytest.fixture
async def lane(valkey: str) -> AsyncIterator[AsyncExchange]:
    """An ``AsyncExchange`` on a new asyncio client, both closed afterwards."""
    client = new_async_client(os.environ["VTASKS_TEST_VALKEY_URL"])
    exchange_lane = AsyncExchange(client)
    try:
        yield exchange_lane
    finally:
        await exchange_lane.aclose()
        await client.aclose()


def _client_ids(client: object) -> set[str]:
    return {entry["id"] for entry in client.client_list()}  # type: ignore[attr-defined]


def test_replies_come_back_in_order_with_errors_in_place(client: object) -> None:
    key = f"{os.environ['VTASKS_TEST_VALKEY_PREFIX']}:exchange"
    replies = exchange(
        client, [("SET", key, "1"), ("INCRBY", key, "x"), ("INCR", key), ("DEL", key)]
    )
    assert replies[0] == b"OK"  # raw replies: no response callbacks on this path
    assert isinstance(replies[1], ResponseError)
    assert replies[2:] == [2, 1]


def test_without_valkey_pys_parser_the_replies_are_the_same(
    client: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection class without valkey-py's parser is read through its ``read_response``."""
    monkeypatch.setattr(_exchange, "_parser", lambda connection: None)
    test_replies_come_back_in_order_with_errors_in_place(client)


def test_a_connection_reset_while_reading_is_a_connection_error_and_drops_it(
    client: object,
) -> None:
    """The server goes away between the send and the reply: the caller gets valkey-py's
    ``ConnectionError`` (the command may have run), and the next call starts on a new one."""
    mine = exchange(client, [("CLIENT", "ID")])[0]
    with pytest.raises(ConnectionError):
        exchange(client, [("CLIENT", "KILL", "ID", str(mine), "SKIPME", "no"), ("PING",)])
    assert exchange(client, [("CLIENT", "ID")])[0] != mine


def test_a_large_first_command_goes_out_alone_a_short_one_with_the_rest(
    client: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"{os.environ['VTASKS_TEST_VALKEY_PREFIX']}:first-send"
    sends: list[int] = []
    send = _exchange._send

    def counting(client: object, connection: object, packed: list[bytes], *, retry: bool) -> object:
        sends.append(len(packed))
        return send(client, connection, packed, retry=retry)

    monkeypatch.setattr(_exchange, "_send", counting)
    big = "x" * _exchange.FIRST_SEND_AT
    assert exchange(client, [("SET", key, big), ("GET", key), ("DEL", key)]) == [
        b"OK", big.encode(), 1,
    ]  # fmt: skip
    assert sends == [1, 2]  # the server starts on the first while the rest are packed
    sends.clear()
    assert exchange(client, [("SET", key, "1"), ("DEL", key)]) == [b"OK", 1]
    assert sends == [2]  # a short command waits for the rest: one send


def test_meanwhile_runs_once_after_everything_is_sent_and_before_the_replies(
    client: object,
) -> None:
    key = f"{os.environ['VTASKS_TEST_VALKEY_PREFIX']}:meanwhile"
    other = sync_client(os.environ["VTASKS_TEST_VALKEY_URL"])
    other.delete(key)  # type: ignore[attr-defined]
    seen: list[bytes | None] = []

    def meanwhile() -> None:
        # The commands are on the wire: another connection sees their effect come.
        for _ in range(200):
            if other.get(key) is not None:  # type: ignore[attr-defined]
                break
            threading.Event().wait(0.005)
        seen.append(other.get(key))  # type: ignore[attr-defined]

    commands = (("SET", key, str(i)) for i in range(5000))  # several sends of SEND_AT bytes
    replies = exchange(client, commands, meanwhile)
    assert seen and seen[0] is not None and len(seen) == 1
    assert replies == [b"OK"] * 5000
    exchange(client, [("DEL", key)])


def test_a_killed_connection_is_replaced_before_the_next_call(client: object) -> None:
    exchange(client, [("PING",)])
    mine = exchange(client, [("CLIENT", "ID")])[0]
    client.client_kill_filter(_id=mine)  # type: ignore[attr-defined]
    # The send may still succeed on the dead socket; then the read fails and drops it.
    try:
        exchange(client, [("PING",)])
    except ConnectionError:
        pass
    assert exchange(client, [("CLIENT", "ID")])[0] != mine
    assert exchange(client, [("PING",)]) == [b"PONG"]


def test_each_thread_has_its_own_connection_and_closes_it_when_it_ends(client: object) -> None:
    ids: list[int] = []

    def in_thread() -> None:
        ids.append(exchange(client, [("CLIENT", "ID")])[0])

    exchange(client, [("PING",)])
    mine = exchange(client, [("CLIENT", "ID")])[0]
    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    gc.collect()
    assert ids and ids[0] != mine
    assert str(ids[0]) not in _client_ids(client), "a finished thread's connection stays open"
    assert str(mine) in _client_ids(client)


def test_a_forked_child_opens_its_own_connection(client: object) -> None:
    mine = exchange(client, [("CLIENT", "ID")])[0]
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Threads of earlier tests may linger; this child only makes one call and exits.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            os.write(write, str(exchange(client, [("CLIENT", "ID")])[0]).encode())
        finally:
            os._exit(0)
    os.close(write)
    child_id = int(os.read(read, 64) or b"0")
    os.close(read)
    os.waitpid(pid, 0)
    assert child_id and child_id != mine
    assert exchange(client, [("CLIENT", "ID")])[0] == mine
    assert _exchange._held.pid == os.getpid()


async def test_async_exchanges_in_parallel_never_mix_replies(valkey: str) -> None:
    client = new_async_client(os.environ["VTASKS_TEST_VALKEY_URL"])
    lane = AsyncExchange(client)
    try:
        key = f"{os.environ['VTASKS_TEST_VALKEY_PREFIX']}:lane"

        async def echo(i: int) -> list[object]:
            return await lane.exchange([("ECHO", f"a{i}"), ("ECHO", f"b{i}")])

        replies = await asyncio.gather(*(echo(i) for i in range(50)))
        assert replies == [[f"a{i}".encode(), f"b{i}".encode()] for i in range(50)]
        assert isinstance((await lane.exchange([("INCRBY", key, "x")]))[0], ResponseError)
    finally:
        await lane.aclose()
        await client.aclose()


async def test_a_cancelled_async_exchange_drops_its_connection(valkey: str) -> None:
    client = new_async_client(os.environ["VTASKS_TEST_VALKEY_URL"])
    lane = AsyncExchange(client)
    key = f"{os.environ['VTASKS_TEST_VALKEY_PREFIX']}:lane-block"
    try:
        blocked = asyncio.ensure_future(lane.exchange([("BLPOP", key, "5")]))
        await asyncio.sleep(0.1)
        blocked.cancel()
        with pytest.raises(asyncio.CancelledError):
            await blocked
        assert lane._idle == []  # its reply would be unread: never reused
        mine = (await lane.exchange([("CLIENT", "ID")]))[0]
        await client.client_kill_filter(_id=mine)
        try:
            await lane.exchange([("PING",)])  # a send on the dead socket may pass; the read fails
        except ConnectionError:
            pass
        assert lane._idle == [] or (await lane.exchange([("CLIENT", "ID")]))[0] != mine
        assert await lane.exchange([("PING",)]) == [b"PONG"]
    finally:
        await lane.aclose()
        await client.aclose()


async def test_an_async_exchange_past_its_deadline_raises_a_timeout_and_drops_its_connection(
    valkey: str,
) -> None:
    """One deadline (the pool's ``socket_timeout``) covers the whole exchange, connect included;
    the connections themselves carry no read timeout."""
    url = os.environ["VTASKS_TEST_VALKEY_URL"]
    client = new_async_client(url)
    lane = AsyncExchange(client)
    lane.timeout = 0.2
    other = new_async_client(url)
    key = f"{os.environ['VTASKS_TEST_VALKEY_PREFIX']}:lane-deadline"
    try:
        assert lane._connection_kwargs["socket_timeout"] is None
        assert lane._connection_kwargs["socket_connect_timeout"]
        assert await lane.exchange([("DEL", key)]) == [0]
        await other.execute_command("CLIENT", "PAUSE", "700", "WRITE")
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError, match="no reply within 0.2s"):
            await lane.exchange([("INCR", key), ("PING",)])
        assert 0.15 < loop.time() - started < 0.6
        assert lane._idle == []  # the INCR's reply is still owed: never reused
        await asyncio.sleep(0.6)  # the pause ends (the INCR may or may not have run: unknown)
        assert await lane.exchange([("PING",)]) == [b"PONG"]  # on a new connection
        assert len(lane._idle) == 1
    finally:
        await other.execute_command("CLIENT", "UNPAUSE")
        await lane.aclose()
        await client.aclose()
        await other.aclose()


async def test_an_async_connection_the_server_closed_while_idle_is_replaced_unseen(
    lane: AsyncExchange,
) -> None:
    """Once the loop has seen the server close an idle connection, the next exchange goes out on
    a new one: nothing had been sent, so nothing is lost or run twice, and the caller sees no
    error."""
    other = new_async_client(os.environ["VTASKS_TEST_VALKEY_URL"])
    try:
        mine = (await lane.exchange([("CLIENT", "ID")]))[0]
        await other.client_kill_filter(_id=mine)
        await asyncio.sleep(0.05)  # the loop reads the connection's end of file
        replies = await lane.exchange([("CLIENT", "ID"), ("PING",)])
        assert replies[0] != mine and replies[1] == b"PONG"
        assert len(lane._idle) == 1
    finally:
        await other.aclose()


async def test_an_async_exchange_sends_each_batch_at_once_and_keeps_error_replies_in_place(
    lane: AsyncExchange,
) -> None:
    """The asyncio side writes straight to valkey-py's stream and reads from its parser: the
    replies still come back raw and in order, an error reply as its ``ResponseError``, and a
    send far past the transport's buffer limits (flow control) arrives whole."""
    key = f"{os.environ['VTASKS_TEST_VALKEY_PREFIX']}:lane-raw"
    big = b"x" * (4 * 1024 * 1024)
    replies = await lane.exchange(
        [("SET", key, big), ("INCRBY", key, "x"), ("STRLEN", key), ("DEL", key)]
    )
    assert replies[0] == b"OK"
    assert isinstance(replies[1], ResponseError)
    assert replies[2:] == [len(big), 1]


async def test_an_async_exchange_falls_back_to_the_public_api_without_valkey_pys_streams(
    lane: AsyncExchange, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection class without valkey-py's stream attributes (a later valkey-py, another
    connection class) is driven through ``send_packed_command``/``read_response``, with the same
    replies."""
    monkeypatch.setattr(_exchange, "_streams", lambda connection: None)
    key = f"{os.environ['VTASKS_TEST_VALKEY_PREFIX']}:lane-public"
    replies = await lane.exchange([("SET", key, "1"), ("INCRBY", key, "x"), ("DEL", key)])
    assert replies[0] == b"OK" and isinstance(replies[1], ResponseError) and replies[2] == 1
