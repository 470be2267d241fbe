from typing import Any

import pytest
import valkey.connection
from valkey.asyncio.connection import Connection
from valkey.exceptions import DataError

from vtasks.drivers.valkey.client import _new_sync_client, new_async_client


@pytest.mark.parametrize("side", ["async", "sync"])
def test_the_clients_pack_commands_in_c_byte_for_byte_like_valkey_py(side: str) -> None:
    plain: Any
    if side == "async":
        client = new_async_client("redis://127.0.0.1:6379/0")
        plain = Connection()
    else:  # valkey-py's sync connection calls the C encoder through its serializer object
        client = _new_sync_client("redis://127.0.0.1:6379/0", cluster=False)
        plain = valkey.connection.Connection()
    packed = client.connection_pool.connection_class()
    commands = [
        ("SCRIPT LOAD", "return 1"),
        ("EVALSHA", "f" * 40, 2, "k1", b"k2", 7, 2.5, "é", b"\x00\xff", ""),
        ("SET", "x" * 10_000, b"y" * 7_000),
    ]
    assert type(packed).__name__.startswith("CPacking")
    for command in commands:
        assert b"".join(packed.pack_command(*command)) == b"".join(plain.pack_command(*command))
    assert b"".join(packed.pack_commands(commands)) == b"".join(plain.pack_commands(commands))
    with pytest.raises(DataError):
        packed.pack_command("SET", "k", None)
