"""Every Valkey key name vtasks uses, spelled once.

Layout (``P`` is the backend's ``PREFIX``, default ``vt``):

* per queue, all under the hash tag ``{P:q:<queue>}`` so that one queue lives in one cluster slot
  and its Lua scripts may touch any of its keys:
  ``:ready`` (zset id -> priority band + sequence), ``:delayed`` (zset id -> due time in µs),
  ``:running`` (zset id -> claim time in µs), ``:dead`` (list of failed ids, newest first, capped),
  ``:wake`` (list of wake-up tokens for blocked workers), ``:seq`` (FIFO counter),
  ``:paused`` (string: present while the queue is paused; claims skip the queue),
  ``:idle`` (zset process id -> server time in ms until which that worker waits idle on the
  queue), ``:inbox:<process id>`` (list of messages claimed for that idle worker by the enqueue
  that found it waiting; see ``handoff.py``),
  ``:t:<id>`` (hash: one task's message and state), ``:u:<unique key>`` (string: the holder's id),
  ``:s:<schedule name>`` (string: the latest slot, in µs, the schedule fired into this queue),
  ``:m:<epoch minute>`` (hash: final status -> tasks that finished in that minute, expiring an
  hour after its first count; the admin's throughput).
* global, under ``{P}``: ``:processes`` (zset process id -> last heartbeat in µs), ``:p:<id>``
  (hash: a process row), ``:queues`` (set of queue names ever enqueued to or served),
  ``:schedules`` (hash: dynamic schedule key -> its JSON entry), ``:cc`` (set of the concurrency
  keys that may hold slots, for the reaper).
* per concurrency key (``@task(concurrency_key=...)``), a hash ``{P:cc:<key>}`` of the running
  holders: task id -> process id. Each key is its own slot: its scripts touch that key only.

Scripts reach a queue's task and unique keys from the prefixes passed to them: those keys share
the queue's hash tag, so they sit in the slot of the declared keys. Unique keys are therefore
scoped per queue (a task and its duplicates go to one queue anyway).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

DEFAULT_PREFIX = "vt"


@dataclass(frozen=True, slots=True)
class QueueKeys:
    queue: str
    ready: str
    delayed: str
    running: str
    dead: str
    wake: str
    seq: str
    paused: str
    task_prefix: str
    unique_prefix: str
    schedule_prefix: str
    finished_prefix: str
    idle: str
    inbox_prefix: str

    def inbox(self, process_id: str) -> str:
        return self.inbox_prefix + process_id

    def task(self, task_id: str) -> str:
        return self.task_prefix + task_id

    def unique(self, key: str) -> str:
        return self.unique_prefix + key

    def schedule(self, name: str) -> str:
        return self.schedule_prefix + name

    def finished(self, minute: int) -> str:
        """The finish counter of ``minute`` (whole minutes since the epoch)."""
        return f"{self.finished_prefix}{minute}"


@dataclass(frozen=True, slots=True)
class GlobalKeys:
    processes: str
    process_prefix: str
    queues: str
    schedules: str
    concurrency_keys: str

    def process(self, process_id: str) -> str:
        return self.process_prefix + process_id


@functools.lru_cache(maxsize=1024)
def queue_keys(prefix: str, queue: str) -> QueueKeys:
    tag = f"{{{prefix}:q:{queue}}}"
    return QueueKeys(
        queue=queue, ready=f"{tag}:ready", delayed=f"{tag}:delayed", running=f"{tag}:running",
        dead=f"{tag}:dead", wake=f"{tag}:wake", seq=f"{tag}:seq", paused=f"{tag}:paused",
        task_prefix=f"{tag}:t:", unique_prefix=f"{tag}:u:", schedule_prefix=f"{tag}:s:",
        finished_prefix=f"{tag}:m:", idle=f"{tag}:idle", inbox_prefix=f"{tag}:inbox:",
    )  # fmt: skip


@functools.lru_cache(maxsize=16)
def global_keys(prefix: str) -> GlobalKeys:
    tag = f"{{{prefix}}}"
    return GlobalKeys(
        processes=f"{tag}:processes",
        process_prefix=f"{tag}:p:",
        queues=f"{tag}:queues",
        schedules=f"{tag}:schedules",
        concurrency_keys=f"{tag}:cc",
    )


def concurrency_slots(prefix: str, key: str) -> str:
    """The hash of ``key``'s slot holders (task id -> process id)."""
    return f"{{{prefix}:cc:{key}}}"


def glob_escape(text: str) -> str:
    """``text`` as a literal in a SCAN MATCH pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def own_key_pattern(prefix: str) -> str:
    """A SCAN pattern matching every key of ``prefix`` (tests and tooling clear with it)."""
    return "{" + glob_escape(prefix) + "[:}]*"
