"""Whether a ``django.tasks`` signal has anyone to tell, decided without sending it.

Sending a signal costs a few microseconds of dispatch per task even when its only receivers are
Django's own logging ones and the ``django.tasks`` logger drops what they would log. With nobody
else connected, the send is skipped when the logger is not enabled for the level the receiver
would use (INFO for started/finished, ERROR for a failure, DEBUG for enqueued): the outcome is the
same, no record logged. Any other receiver, or an enabled level, and the signal is sent as always.
"""

from __future__ import annotations

import logging

from django.dispatch import Signal
from django.tasks.signals import task_enqueued

_logger = logging.getLogger("django.tasks")

#: (signal, sender) -> (receivers list identity and length, verdict). Django appends to and deletes
#: from ``Signal.receivers`` in place and rebuilds it when weak receivers die, so identity plus
#: length changes whenever the answer may: the check costs a dict look-up per task, not a scan.
_verdicts: dict[tuple[int, type], tuple[tuple[int, int], bool]] = {}


def only_djangos(signal: Signal, sender: type) -> bool:
    """Whether every receiver of ``signal`` for ``sender`` is one of Django's logging ones."""
    key = (id(signal), sender)
    state = (id(signal.receivers), len(signal.receivers))
    cached = _verdicts.get(key)
    if cached is not None and cached[0] == state:
        return cached[1]
    receivers = signal._live_receivers(sender)
    sync_receivers = receivers[0] if isinstance(receivers, tuple) else receivers
    verdict = all(getattr(r, "__module__", "") == "django.tasks.signals" for r in sync_receivers)
    _verdicts[key] = (state, verdict)
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
