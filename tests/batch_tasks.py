"""Tasks for batch queues: each receives the list of its messages as its single argument."""

from __future__ import annotations

import os

from django.tasks import task


@task(queue_name="batch")
def collect(messages: list[dict]) -> list:
    return [[m["id"], m["args"], m["kwargs"]] for m in messages]


@task(queue_name="batch")
async def acollect(messages: list[dict]) -> int:
    return len(messages)


@task(queue_name="batch", max_attempts=2)
def flaky_collect(messages: list[dict]) -> int:
    """Fails on its first call per marker file (the first message's first argument)."""
    marker = messages[0]["args"][0]
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise ConnectionError("first call fails")
    return len(messages)


@task(queue_name="slowbatch")
def slow_collect(messages: list[dict]) -> int:
    """Appends its message ids to ``args[0]`` (a file) per call, after ``args[1]`` seconds."""
    import time

    path, seconds = messages[0]["args"]
    time.sleep(seconds)
    with open(path, "a") as out:
        out.write(" ".join(m["id"] for m in messages) + "\n")
    return len(messages)
