"""The chaos harness: a real ``vtasks supervise`` tree, a thread that kill -9s its children, and
the tally of what the tasks wrote (``tests.chaos.tasks``) against what the backend stored."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import random
import signal
import subprocess
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.chaos.tasks import DONE, STARTS
from tests.helpers import complete_lines, vtasks_command

WORKER_LOST = "vtasks.core.errors.WorkerLost"
#: Seconds without a heartbeat before a process counts as dead. tests.settings' 3 s proved too
#: short here: on SQLite with a 50,000-task backlog a live child's heartbeat lapsed past it, its
#: claims were recovered while it ran them (tasks run twice by live processes), and it fenced
#: itself out. A kill is still noticed within this many seconds.
ALIVE_THRESHOLD = 10


def topology(path: Path, alias: str, *, processes: int = 4, concurrency: int = 8) -> Path:
    path.write_text(
        textwrap.dedent(f"""\
            backend: {alias}
            shutdown_timeout: 3
            alive_threshold: {ALIVE_THRESHOLD}
            workers:
              - name: chaos
                queues: [default]
                concurrency: {concurrency}
                processes: {processes}
            """)
    )
    return path


@contextlib.contextmanager
def supervise(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``vtasks supervise`` in its own session; whatever outlives the block is killed as a group."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            vtasks_command("supervise", "--config", str(config)), env=dict(os.environ),
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def children_of(pid: int) -> list[int]:
    """The live (not zombie) children of ``pid``, from ``/proc/<pid>/task/*/children``."""
    found: set[int] = set()
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            found.update(int(p) for p in path.read_text().split())
    return sorted(p for p in found if _state(p) not in (None, "Z"))


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


class Chaos(threading.Thread):
    """Every ``interval`` seconds (uniformly drawn), kill -9 one random child of ``parent``."""

    def __init__(self, parent: int, interval: tuple[float, float] = (1.0, 3.0), seed: int = 0):
        super().__init__(name="chaos", daemon=True)
        self.parent = parent
        self.interval = interval
        self.random = random.Random(seed)
        self.killed: list[int] = []
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(self.random.uniform(*self.interval)):
            children = children_of(self.parent)
            if children:
                victim = self.random.choice(children)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(victim, signal.SIGKILL)
                    self.killed.append(victim)

    def stop(self) -> None:
        self._stop.set()
        self.join(timeout=10)


def runs(path: Path) -> dict[str, list[int]]:
    """token -> the pids that wrote a line for it, in file order."""
    seen: dict[str, list[int]] = collections.defaultdict(list)
    for line in complete_lines(path):
        token, pid = line.split()[:2]
        seen[token].append(int(pid))
    return seen


def done_count(directory: Path) -> int:
    return len(runs(directory / DONE))


def _errors(record: dict[str, Any]) -> list[dict[str, Any]]:
    errors = record["errors"]
    return json.loads(errors) if isinstance(errors, str) else list(errors or [])


@dataclass(slots=True, kw_only=True)
class Tally:
    """What a chaos run did, and every broken promise found in it (``problems`` must be empty)."""

    tasks: int
    kills: int
    #: Attempts ended by a kill (``WorkerLost`` entries in the records' errors).
    worker_lost: int = 0
    #: Tasks that needed more than one attempt.
    rerun_tasks: int = 0
    #: Extra completed runs of a task (its function ran to its end more than once).
    duplicates: int = 0
    lost: int = 0
    problems: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        if len(self.problems) < 20:
            self.problems.append(message)


def tally(
    directory: Path, tokens: dict[str, str], records: list[dict[str, Any]], killed: list[int]
) -> Tally:
    """Check the run: ``tokens`` maps task id -> token; ``records`` are ``tests.storage`` views.

    Every task SUCCESSFUL and unclaimed, its function run to its end at least once; more than once
    only when a kill interrupted it: each extra completion was written by a killed process, and a
    task has no more completions than its ``WorkerLost`` errors plus one.
    """
    done, starts = runs(directory / DONE), runs(directory / STARTS)
    by_id = {r["id"]: r for r in records}
    dead = set(killed)
    result = Tally(tasks=len(tokens), kills=len(killed))
    for task_id, token in tokens.items():
        record = by_id.get(task_id)
        completions = done.get(token, [])
        if record is None or record["status"] != "SUCCESSFUL" or not completions:
            result.lost += 1
            status = record and record["status"]
            result.fail(f"{token}: lost (status {status}, {len(completions)} completion(s))")
            continue
        if record["claimed_by"]:
            result.fail(f"{token}: still claimed by {record['claimed_by']}")
        errors = [e["exception_class_path"] for e in _errors(record)]
        lost_attempts = errors.count(WORKER_LOST)
        if len(errors) != lost_attempts:
            result.fail(f"{token}: errors other than WorkerLost: {errors}")
        result.worker_lost += lost_attempts
        result.rerun_tasks += record["attempts"] > 1
        result.duplicates += len(completions) - 1
        if len(completions) > 1 + lost_attempts:
            result.fail(f"{token}: {len(completions)} completions, {lost_attempts} WorkerLost")
        if not dead.issuperset(completions[:-1]):
            result.fail(f"{token}: re-run after a live process {completions[:-1]} completed it")
        if len(starts.get(token, [])) > record["attempts"]:
            result.fail(f"{token}: {len(starts[token])} starts for {record['attempts']} attempts")
    return result
