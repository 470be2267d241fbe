"""Process identity: globally unique, so a restarted process never inherits a dead one's claims."""

from __future__ import annotations

import os
import secrets
import socket


def process_id(prefix: str | None = None) -> str:
    """``host:pid:boot`` (or ``prefix:boot``); the random boot part tells restarts apart."""
    base = prefix or f"{socket.gethostname()}:{os.getpid()}"
    return f"{base[:80]}:{secrets.token_hex(3)}"
