"""sd_notify over a real AF_UNIX datagram socket, and the children's readiness pipe."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vtasks.runtime import readiness
from vtasks.runtime.notify import Notifier
from vtasks.runtime.readiness import ReadinessPipe
from vtasks.runtime.signals import SignalQueue


@pytest.fixture
def listener() -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket and its address, on a short path (sun_path holds 108 bytes)."""
    directory = tempfile.mkdtemp(prefix="vtn-", dir="/tmp")
    path = os.path.join(directory, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    try:
        yield sock, path
    finally:
        sock.close()
        shutil.rmtree(directory)


def test_messages_reach_a_path_socket(listener):
    sock, path = listener
    notifier = Notifier.from_environ({"NOTIFY_SOCKET": path})
    assert notifier.enabled and notifier.ready("3/3 child(ren) up")
    assert sock.recv(4096) == b"READY=1\nSTATUS=3/3 child(ren) up"
    assert notifier.stopping() and sock.recv(4096) == b"STOPPING=1"
    assert notifier.watchdog() and sock.recv(4096) == b"WATCHDOG=1"
    assert notifier.status("two\nlines") and sock.recv(4096) == b"STATUS=two lines"
    assert notifier.reloading()
    reloading, monotonic = sock.recv(4096).decode().split("\n")
    assert reloading == "RELOADING=1" and monotonic.startswith("MONOTONIC_USEC=")
    assert int(monotonic.split("=")[1]) > 0


def test_an_abstract_socket_is_named_with_a_leading_at():
    name = f"vtasks-test-{secrets.token_hex(4)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        assert Notifier(f"@{name}").ready()
        assert sock.recv(4096) == b"READY=1"


def test_without_notify_socket_everything_is_a_no_op():
    notifier = Notifier.from_environ({})
    assert not notifier.enabled and notifier.watchdog_interval is None
    assert notifier.ready() is False and notifier.watchdog() is False


def test_the_watchdog_interval_is_half_the_timeout_and_only_for_this_process():
    mine = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier.from_environ(mine).watchdog_interval == 1.5
    assert Notifier.from_environ({**mine, "WATCHDOG_PID": "1"}).watchdog_interval is None
    assert Notifier.from_environ({**mine, "WATCHDOG_USEC": "nope"}).watchdog_interval is None


def test_a_vanished_socket_fails_quietly_and_logs_once(caplog):
    path = Path(tempfile.mkdtemp(prefix="vtn-", dir="/tmp")) / "gone"
    notifier = Notifier(str(path))
    assert notifier.ready() is False and notifier.ready() is False
    assert caplog.text.count("cannot notify") == 1
    path.parent.rmdir()


# -- readiness --------------------------------------------------------------------------------
def test_announce_writes_this_pid_once_and_collect_reads_whole_lines():
    pipe = ReadinessPipe()
    try:
        readiness._announce_fd = os.dup(pipe._write)  # what in_child() leaves in a child
        readiness.announce()
        readiness.announce()  # once only
        assert pipe.collect() == [os.getpid()]
        os.write(pipe._write, b"12")
        assert pipe.collect() == []
        os.write(pipe._write, b"3\n45\n")
        assert pipe.collect() == [123, 45]
    finally:
        pipe.close()


def test_announce_outside_a_supervised_child_does_nothing():
    readiness._announce_fd = None
    readiness.announce()


def test_the_signal_wait_wakes_for_a_watched_descriptor():
    pipe = ReadinessPipe()
    queue = SignalQueue()
    queue.install()
    try:
        queue.watch(pipe.fileno())
        os.write(pipe._write, b"7\n")
        started = time.monotonic()
        assert queue.wait(5.0) == []
        assert time.monotonic() - started < 1.0 and pipe.collect() == [7]
    finally:
        queue.close()
        pipe.close()
