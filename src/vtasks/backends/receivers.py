"""Whether a ``django.tasks`` signal has anyone to tell, decided without sending it.

Sending a signal costs a few microseconds of dispatch per task even when its only receivers are
Django's own logging ones and the ``django.tasks`` logger drops what they would log. With nobody
else connected, the send is skipped when the logger is not enabled for the level the receiver
would use (INFO for started/finished, ERROR for a failure, DEBUG for enqueued): the outcome is the
same, no record logged. Any other receiver, or an enabled level, and the signal is sent as always.
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal
from django.tasks.signals import task_enqueued

_logger = logging.getLogger("django.tasks")

#: (signal, sender) -> (the receivers list, its length, verdict). Django appends to and deletes
#: from ``Signal.receivers`` in place and rebuilds it when weak receivers die, so the same list
#: (held here, so its identity cannot be reused) of the same length means the same answer: the
#: check costs a dict look-up per task, not a scan.
_verdicts: dict[tuple[Signal, type], tuple[list[Any], int, bool]] = {}


def only_djangos(signal: Signal, sender: type) -> bool:
    """Whether every receiver of ``signal`` for ``sender`` is one of Django's logging ones."""
    receivers = signal.receivers
    cached = _verdicts.get((signal, sender))
    if cached is not None and cached[0] is receivers and cached[1] == len(receivers):
        return cached[2]
    live = signal._live_receivers(sender)
    sync_receivers = live[0] if isinstance(live, tuple) else live
    verdict = all(getattr(r, "__module__", "") == "django.tasks.signals" for r in sync_receivers)
    _verdicts[(signal, sender)] = (receivers, len(receivers), verdict)
    return verdict


def wanted(signal: Signal, sender: type, failed: bool = False) -> bool:
    """Whether sending ``signal`` could have any effect (see the module docstring)."""
    if not only_djangos(signal, sender):
        return True
    if signal is task_enqueued:
        level = logging.DEBUG
    else:
        level = logging.ERROR if failed else logging.INFO
    return _logger.isEnabledFor(level)
