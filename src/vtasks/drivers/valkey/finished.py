"""Tasks finished per queue, minute and final status, from the counters that ``finish.lua`` and
``revoke.lua`` keep (``keys.QueueKeys.finished``): the admin dashboard's throughput.

A counter is a hash per queue and minute (fields ``SUCCESSFUL`` and ``FAILED``), bumped once per
status by each script call and expiring ``FINISHED_TTL`` seconds after its first count. Reading a
window is one HGETALL per queue and minute, all in one pipeline (a cluster pipeline groups them
by node). Retries are no finishes: a READY outcome is not counted.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from vtasks.drivers.valkey.keys import queue_keys
from vtasks.drivers.valkey.records import EPOCH, to_us

#: Seconds a minute's counter lives after its first count: the longest window it can serve.
FINISHED_TTL = 3600
MINUTE_US = 60_000_000
#: Minutes one read covers at most (older counters have expired anyway).
MAX_MINUTES = FINISHED_TTL // 60

Counts = dict[tuple[str, datetime, str], int]


def finished_per_minute(
    client: Any, prefix: str, queues: Sequence[str], since: datetime, until: datetime
) -> Counts:
    """Tasks that ended SUCCESSFUL or FAILED, per ``(queue, minute, status)``, for the minutes
    that start at or after ``since`` up to the one holding ``until``, at most ``MAX_MINUTES``
    (minutes as aware UTC datetimes; minutes with nothing finished are left out)."""
    last = to_us(until) // MINUTE_US
    first = max(-(-to_us(since) // MINUTE_US), last - MAX_MINUTES + 1)
    slots = [
        (queue, minute) for queue in dict.fromkeys(queues) for minute in range(first, last + 1)
    ]
    if not slots:
        return {}
    pipe = client.pipeline(transaction=False)
    for queue, minute in slots:
        pipe.hgetall(queue_keys(prefix, queue).finished(minute))
    counts: Counts = {}
    for (queue, minute), fields in zip(slots, pipe.execute(), strict=True):
        at = EPOCH + timedelta(minutes=minute)
        for status, count in fields.items():
            counts[queue, at, status.decode()] = int(count)
    return counts
