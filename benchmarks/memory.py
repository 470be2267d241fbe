"""Memory of a four-worker deployment: vtasks' supervisor tree against its peers' processes.

Issue #4's measure: `vtasks supervise` with one pool of 4 worker processes (the supervisor plus 4
forked children), beside 4 separate django-vtasks `runworker` processes and one Celery prefork
worker with concurrency 4 (its parent plus 4 forked children), all on the benchmark's Redis. Each
system first runs the same 2,000 no-op tasks, so every process has imported and touched what it
needs; then every process of each deployment is read from ``/proc``:

- RSS (``VmRSS``): resident memory, pages shared with other processes counted in each;
- USS (``Private_Clean + Private_Dirty`` of ``smaps_rollup``): memory only that process holds,
  what killing it would give back. Forked children share their parent's pages copy-on-write,
  which USS shows and RSS hides.

Run inside the benchmark venv (``benchmarks/run`` builds it):
    benchmarks/.venv/bin/python benchmarks/memory.py
It rewrites the ``memory`` section of RESULTS.md.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness.catalog import PYTHON, VENV_BIN  # noqa: E402
from harness.memory import process_tree  # noqa: E402

VALKEY_URL = os.environ.get("BENCH_VALKEY_URL", "redis://127.0.0.1:6379/15")
TASKS = 2000
WORKERS = 4
CONCURRENCY = 20
RESULTS = HERE / "RESULTS.md"
BEGIN, END = "<!-- memory -->", "<!-- /memory -->"


@dataclass
class Proc:
    role: str
    pid: int
    rss_kb: int
    uss_kb: int


@dataclass
class Deployment:
    name: str
    command: str
    procs: list[Proc]

    @property
    def uss_mb(self) -> float:
        return sum(p.uss_kb for p in self.procs) / 1024

    @property
    def rss_mb(self) -> float:
        return sum(p.rss_kb for p in self.procs) / 1024


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _uss_kb(pid: int) -> int:
    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    return sum(int(m) for m in re.findall(r"^Private_(?:Clean|Dirty):\s+(\d+) kB", text, re.M))


def _read(role: str, pid: int) -> Proc:
    return Proc(role=role, pid=pid, rss_kb=_status_kb(pid, "VmRSS"), uss_kb=_uss_kb(pid))


def _env(project: str, out_dir: str) -> dict[str, str]:
    return {
        **os.environ, "PYTHONPATH": str(HERE), "DJANGO_SETTINGS_MODULE": f"systems.{project}.settings",
        "BENCH_OUT_DIR": out_dir, "BENCH_VALKEY_URL": VALKEY_URL, "BENCH_CONCURRENCY": str(CONCURRENCY),
    }  # fmt: skip


def _flush() -> None:
    import valkey

    valkey.Valkey.from_url(VALKEY_URL).flushdb()


def _enqueue(project: str, out_dir: str) -> None:
    script = (
        "import django; django.setup()\n"
        "from systems." + project + " import adapter\n"
        "from benchtasks.tasks import noop\n"
        "task = adapter.task('noop') if hasattr(adapter, 'task') else noop\n"
        f"adapter.enqueue_many(task, [f'm{{i}}' for i in range({TASKS})])\n"
    )
    subprocess.run([PYTHON, "-c", script], env=_env(project, out_dir), check=True, cwd=HERE)


def _done(out_dir: str) -> int:
    return sum(len(p.read_text().splitlines()) for p in Path(out_dir).glob("done-*.log"))


def _measure(name: str, project: str, command: str, starts: list[list[str]]) -> Deployment:
    """Start the processes, run the tasks through them, read every process, stop them."""
    _flush()
    out_dir = tempfile.mkdtemp(prefix="vtasks-mem-")
    env = _env(project, out_dir)
    roots = [
        subprocess.Popen(argv, env=env, cwd=HERE, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)
        for argv in starts
    ]  # fmt: skip
    try:
        time.sleep(3.0)  # every process up and idle
        _enqueue(project, out_dir)
        deadline = time.monotonic() + 120
        while _done(out_dir) < TASKS:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: only {_done(out_dir)}/{TASKS} tasks ran")
            time.sleep(0.2)
        time.sleep(1.0)
        procs: list[Proc] = []
        for root in roots:
            tree = process_tree(root.pid)
            for pid in tree:
                role = "parent" if pid == root.pid and len(tree) > 1 else "worker"
                procs.append(_read(role, pid))
        return Deployment(name=name, command=command, procs=procs)
    finally:
        for root in roots:
            os.killpg(root.pid, signal.SIGTERM)
        for root in roots:
            try:
                root.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(root.pid, signal.SIGKILL)
                root.wait()
        _flush()


def _vtasks() -> Deployment:
    config = Path(tempfile.mkdtemp(prefix="vtasks-mem-")) / "vtasks.yml"
    config.write_text(
        "backend: default\n"
        f"workers:\n  - name: default\n    queues: [default]\n"
        f"    concurrency: {CONCURRENCY}\n    processes: {WORKERS}\n"
        "scheduler: {enabled: false}\n"
    )
    argv = [str(VENV_BIN / "vtasks"), "--settings", "systems.vtasks_valkey.settings",
            "--pythonpath", str(HERE), "supervise", "--config", str(config)]  # fmt: skip
    command = f"vtasks supervise (one pool, processes: {WORKERS}, concurrency: {CONCURRENCY})"
    deployment = _measure("vtasks", "vtasks_valkey", command, [argv])
    for proc in deployment.procs:
        proc.role = "supervisor" if proc.role == "parent" else "worker child"
    return deployment


def _django_vtasks() -> Deployment:
    argv = [PYTHON, "-m", "django", "runworker", "--concurrency", str(CONCURRENCY),
            "--queue", "default"]  # fmt: skip
    command = f"{WORKERS} x manage.py runworker --concurrency {CONCURRENCY}"
    return _measure("django-vtasks", "django_vtasks_valkey", command, [argv] * WORKERS)


def _celery() -> Deployment:
    argv = [str(VENV_BIN / "celery"), "-A", "systems.celery.app", "worker", "--pool=prefork",
            "-c", str(WORKERS), "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--loglevel", "WARNING"]  # fmt: skip
    command = f"celery worker --pool=prefork -c {WORKERS}"
    deployment = _measure("celery", "celery", command, [argv])
    for proc in deployment.procs:
        proc.role = "prefork parent" if proc.role == "parent" else "prefork child"
    return deployment


def _report(deployments: list[Deployment], took: float) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    vt = next(d for d in deployments if d.name == "vtasks")
    lines = [
        BEGIN, "## Memory: four worker processes", "",
        f"Written by `benchmarks/memory.py` on {when} ({took:.0f} s), by:", "",
        "    benchmarks/.venv/bin/python benchmarks/memory.py", "",
        f"Each deployment first ran the same {TASKS:,} no-op tasks on Redis (database 15); then every "
        "process was read from `/proc`. USS = `Private_Clean + Private_Dirty` (memory only that "
        "process holds); RSS counts shared pages in every process.", "",
    ]  # fmt: skip
    peer = next((d for d in deployments if d.name == "django-vtasks"), None)
    if peer is not None:
        verdict = "PASS" if vt.uss_mb < peer.uss_mb else "MISS"
        lines += [
            "```",
            f"{verdict}  vtasks supervisor + {WORKERS} children USS < {WORKERS} django-vtasks "
            f"workers USS: {vt.uss_mb:.1f} MB vs {peer.uss_mb:.1f} MB = {vt.uss_mb / peer.uss_mb:.2f}x",
            "```", "",
        ]  # fmt: skip
    lines += [
        "| system | deployment | processes | USS MB (sum) | RSS MB (sum) |",
        "|---|---|---|---|---|",
    ]
    for d in deployments:
        lines.append(
            f"| {d.name} | {d.command} | {len(d.procs)} | {d.uss_mb:.1f} | {d.rss_mb:.1f} |"
        )
    lines += ["", "Per process:", "", "| system | role | USS MB | RSS MB |", "|---|---|---|---|"]
    for d in deployments:
        for p in d.procs:
            lines.append(f"| {d.name} | {p.role} | {p.uss_kb / 1024:.1f} | {p.rss_kb / 1024:.1f} |")
    lines += ["", END]
    return "\n".join(lines)


def _write(section: str) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    if BEGIN in text and END in text:
        start, end = text.index(BEGIN), text.index(END) + len(END)
        text = text[:start] + section + text[end:]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    RESULTS.write_text(text)


def main() -> int:
    started = time.monotonic()
    deployments = []
    for measure in (_vtasks, _django_vtasks, _celery):
        try:
            deployments.append(measure())
        except Exception as exc:  # a peer that fails is reported, the others still run
            print(f"memory: {measure.__name__.strip('_')} failed: {exc}", file=sys.stderr)
    section = _report(deployments, time.monotonic() - started)
    print(section)
    _write(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
