"""Subprocesses of the harness, every one with a time limit: client commands and workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from harness.memory import TreeMemory


class StepError(Exception):
    """A subprocess failed or timed out; the message carries the tail of its output."""


def _tail(path: Path, chars: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def run_json(argv: list[str], *, env: dict[str, str], timeout: float, log: Path) -> dict[str, Any]:
    """Run a command that prints a JSON object last; stderr goes to ``log``."""
    with log.open("a") as err:
        err.write(f"\n$ {' '.join(argv)}\n")
        err.flush()
        try:
            done = subprocess.run(
                argv, env=env, stdout=subprocess.PIPE, stderr=err, text=True, timeout=timeout,
                start_new_session=True,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise StepError(
                f"timed out after {timeout:g}s: {' '.join(argv[-4:])}\n{_tail(log)}"
            ) from exc
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise StepError(f"exit {done.returncode}: {' '.join(argv[-4:])}\n{_tail(log)}")
    return json.loads(lines[-1])


def run_plain(argv: list[str], *, env: dict[str, str], timeout: float, log: Path) -> None:
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(argv)}\n")
        out.flush()
        try:
            done = subprocess.run(
                argv, env=env, stdout=out, stderr=out, timeout=timeout, start_new_session=True
            )
        except subprocess.TimeoutExpired as exc:
            raise StepError(
                f"timed out after {timeout:g}s: {' '.join(argv)}\n{_tail(log)}"
            ) from exc
    if done.returncode != 0:
        raise StepError(f"exit {done.returncode}: {' '.join(argv)}\n{_tail(log)}")


class Worker:
    """A worker process in its own session (so its forked children stop with it), with memory sampling."""

    def __init__(self, argv: list[str], *, env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("a")
        self._out.write(f"\n$ {' '.join(argv)}\n")
        self._out.flush()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            argv, env=env, stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.memory = TreeMemory(self.proc.pid)
        self._last_sample = 0.0

    def sample(self, every: float = 0.1) -> None:
        now = time.monotonic()
        if now - self._last_sample >= every:
            self._last_sample = now
            self.memory.sample()

    def exited(self) -> int | None:
        return self.proc.poll()

    def stop(self, grace: float = 30.0) -> int:
        """SIGTERM the worker's process group, wait ``grace`` seconds, then SIGKILL it."""
        self.memory.sample()
        members = set(self.memory.peaks) | {self.proc.pid}
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._kill_leftovers(members - {self.proc.pid})
        self._out.close()
        return self.proc.returncode

    def _kill_leftovers(self, pids: set[int]) -> None:
        """SIGKILL children that outlived the worker, if they are still in its process group."""
        for pid in pids:
            try:
                if os.getpgid(pid) == self.proc.pid:
                    os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue

    def _signal(self, signum: int) -> None:
        try:
            os.killpg(self.proc.pid, signum)
        except ProcessLookupError:
            pass

    def tail(self) -> str:
        return _tail(self.log)
