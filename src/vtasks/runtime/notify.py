"""``sd_notify`` without libsystemd: one datagram per message to ``$NOTIFY_SOCKET``.

The protocol is newline-separated ``KEY=value`` lines in a single ``AF_UNIX`` datagram; an address
starting with ``@`` names an abstract socket. Outside systemd (no ``NOTIFY_SOCKET``) every call is a
no-op. A socket is opened per message, so none is ever held across ``fork()``.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

from vtasks.config import env

logger = logging.getLogger("vtasks.supervisor")


class Notifier:
    """Tell the service manager about the supervisor's state (``READY``, ``STOPPING``, ...)."""

    def __init__(self, address: str | None = None, *, watchdog_usec: int | None = None) -> None:
        self.address = address or None
        #: Seconds between ``WATCHDOG=1`` pings: half the manager's timeout, as sd_watchdog_enabled
        #: advises; ``None`` when no watchdog is asked for.
        self.watchdog_interval = watchdog_usec / 2_000_000 if watchdog_usec else None
        self._failed = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> Notifier:
        """The notifier systemd asked for; a watchdog meant for another process is ignored."""
        usec: int | None = None
        raw, owner = environ.get(env.WATCHDOG_USEC), environ.get(env.WATCHDOG_PID)
        if raw and (not owner or owner == str(os.getpid())):
            try:
                usec = int(raw)
            except ValueError:
                logger.warning("vtasks: ignoring %s=%r: not an integer", env.WATCHDOG_USEC, raw)
        return cls(
            environ.get(env.NOTIFY_SOCKET), watchdog_usec=usec if usec and usec > 0 else None
        )

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """Send ``fields`` as one message; ``False`` when disabled or the send failed."""
        if self.address is None or not fields:
            return False
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto("\n".join(fields).encode(), target)
        except OSError as exc:
            if not self._failed:  # once per failure streak: the socket may come back
                logger.warning("vtasks: cannot notify %s: %s", self.address, exc)
            self._failed = True
            return False
        self._failed = False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *_status(status))

    def reloading(self, status: str | None = None) -> bool:
        # MONOTONIC_USEC lets systemd >= 253 (Type=notify-reload) match the reload to this message.
        now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.send("RELOADING=1", f"MONOTONIC_USEC={now}", *_status(status))

    def stopping(self, status: str | None = None) -> bool:
        return self.send("STOPPING=1", *_status(status))

    def status(self, text: str) -> bool:
        return self.send(*_status(text))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")


def _status(text: str | None) -> list[str]:
    # One line per message field: a newline would start a bogus KEY=value line.
    return [f"STATUS={' '.join(text.split())}"] if text else []
