"""Commands packed ahead of time (``exchange.pack``, and a single enqueue's call): byte for byte
what valkey-py's packers make of the same command, whatever the values."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from typing import Any

import pytest
from django.tasks import task_backends
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st
from libvalkey import pack_command
from valkey.connection import PythonRespSerializer

from tests import tasks
from vtasks.drivers.valkey.client import new_async_client, sync_client
from vtasks.drivers.valkey.exchange import AsyncExchange, bulk, exchange, pack

values = st.one_of(
    st.text(max_size=40), st.binary(max_size=40), st.integers(min_value=-(2**63), max_value=2**64)
)


def _python_packing(command: tuple[Any, ...]) -> bytes:
    serializer = PythonRespSerializer(buffer_cutoff=6000, encode=lambda value: _encode(value))
    return b"".join(serializer.pack(*command))


def _encode(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode() if isinstance(value, int) else value.encode()


@settings(max_examples=150, deadline=None)
@given(st.lists(values, min_size=1, max_size=12))
def test_packed_commands_match_valkey_pys_packers(command: list[Any]) -> None:
    packed = pack("SET", *command)
    assert packed.command == ("SET", *command)
    assert packed.data == pack_command(("SET", *command))
    assert packed.data == _python_packing(("SET", *command))


@pytest.mark.parametrize("value", [1.5, True, None, ["x"]])
def test_packing_refuses_what_it_cannot_spell(value: Any) -> None:
    with pytest.raises(TypeError, match="cannot pack"):
        bulk(["ok", value])


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"priority": -100, "queue_name": "élan"},
        {"priority": 100, "run_after": timedelta(hours=1)},
        {"max_attempts": 7},
    ],
)
@pytest.mark.parametrize("args", [(1, 2), ("ünïcode", 10**18), ("x" * 5000, 0)])
def test_a_single_enqueue_is_packed_as_its_keys_and_values_would_be(
    valkey: str, options: dict[str, Any], args: tuple[Any, ...]
) -> None:
    """The packed call is the very command a pipeline (a cluster's) sends for the same call:
    negative priorities, a delayed task, a compressed message, text beyond ASCII."""
    backend = task_backends["valkey"]
    if "run_after" in options:
        options = {**options, "run_after": timezone.now() + options["run_after"]}
    task = tasks.add.using(backend="valkey", **options)
    call, after = backend._enqueue.single(backend.prepare(task, args, {}))
    assert call.packed is not None and call.args[4] == 2
    command = ("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)
    assert call.packed == pack_command(command)
    [sadd] = after
    assert sadd.data == pack_command(sadd.command)


def test_a_unique_task_is_left_to_the_usual_packing(valkey: str) -> None:
    backend = task_backends["valkey"]
    task = tasks.add.using(backend="valkey", unique=True)
    call, _ = backend._enqueue.single(backend.prepare(task, (1, 2), {}))
    assert call.packed is None and call.args[4] == 9


def test_exchanges_send_packed_commands_beside_plain_ones(valkey: str) -> None:
    client = sync_client(os.environ["VTASKS_TEST_VALKEY_URL"])
    key = f"{os.environ['VTASKS_TEST_VALKEY_PREFIX']}:packed"
    commands = [pack("SET", key, "1").data, ("INCR", key), pack("INCRBY", key, 5).data]
    assert exchange(client, [*commands, ("DEL", key)]) == [b"OK", 2, 7, 1]

    async def in_a_loop() -> list[Any]:
        lane = AsyncExchange(new_async_client(os.environ["VTASKS_TEST_VALKEY_URL"]))
        try:
            return await lane.exchange([*commands, pack("GET", key).data, ("DEL", key)])
        finally:
            await lane.aclose()

    assert asyncio.run(in_a_loop()) == [b"OK", 2, 7, b"7", 1]
