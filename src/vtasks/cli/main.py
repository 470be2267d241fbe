"""``vtasks``: the command line. The one place that sets Django up for the runtime."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from vtasks.cli.setup import add_path, django_setup
from vtasks.core import heap


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vtasks", description="vtasks: Django background tasks")
    parser.add_argument("--settings", help="Django settings module (else DJANGO_SETTINGS_MODULE)")
    parser.add_argument("--pythonpath", help="a directory to add to sys.path")
    parser.add_argument("--log-level", default=os.environ.get("VTASKS_LOG_LEVEL", "INFO"))
    from vtasks.cli.arguments import (
        add_check_arguments,
        add_health_arguments,
        add_role_arguments,
        add_supervise_arguments,
    )
    from vtasks.serve import add_worker_arguments

    commands = parser.add_subparsers(dest="command", required=True)
    add_supervise_arguments(
        commands.add_parser("supervise", help="run the worker processes of a YAML topology")
    )
    check = commands.add_parser(
        "check", help="validate the configuration and show where values come from"
    )
    add_check_arguments(check)
    add_role_arguments(check)
    add_health_arguments(
        commands.add_parser("health", help="exit 1 when the supervisor's health file is stale")
    )
    add_worker_arguments(commands.add_parser("worker", help="run a worker process"))
    scheduler = commands.add_parser("scheduler", help="run a lone scheduler for VTASKS_SCHEDULE")
    scheduler.add_argument("--backend", help="the TASKS alias (default: the file's, else default)")
    scheduler.add_argument("--config", "-C", default=os.environ.get("VTASKS_CONFIG"),
                           metavar="PATH", help="a YAML topology: its scheduler.schedules win "
                           "over VTASKS_SCHEDULE (default: $VTASKS_CONFIG)")  # fmt: skip
    status = commands.add_parser("status", help="the process table and per-queue depth")
    status.add_argument("--backend", default="default")
    purge = commands.add_parser("purge", help="delete finished results past their retention")
    purge.add_argument("--backend", default="default")
    purge.add_argument(
        "--older-than", type=float, help="seconds: also delete results finished earlier"
    )
    purge.add_argument("--batch-size", type=int, default=1000)
    from vtasks.ops.queues import add_queue_arguments
    from vtasks.ops.retry import add_retry_arguments

    add_retry_arguments(commands.add_parser("retry", help="put failed tasks back to READY"))
    add_queue_arguments(
        commands.add_parser("queue", help="a queue's size and latency; pause, resume or clear it")
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Its start-up (Django's imports and set-up, the parser) runs without the
    cyclic collector; the long-lived commands settle the heap when they start serving (``heap``)."""
    heap.pause()
    try:
        return _command(argv)
    finally:
        heap.resume()  # a command that never settled: ended, failed or short-lived


def _command(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    add_path(args.pythonpath)
    if args.command in ("supervise", "check", "health"):
        from vtasks.cli.supervise import run_check, run_health, run_supervise

        # Django is set up from the merged configuration (the YAML may name the settings).
        run = {"supervise": run_supervise, "check": run_check, "health": run_health}[args.command]
        return run(args)
    django_setup(args.settings)
    from vtasks.config import env
    from vtasks.observability.logformat import configure

    configure(args.log_level, os.environ.get(env.LOG_FORMAT) or "text")
    if args.command == "worker":
        from vtasks.core.errors import ConfigError
        from vtasks.serve import run_worker_options, worker_options

        try:
            options = worker_options(vars(args))
        except ConfigError as exc:
            raise SystemExit(f"vtasks: {exc}") from None
        return run_worker_options(options)
    if args.command == "scheduler":
        return _run_scheduler(args)
    if args.command == "status":
        from vtasks.ops.status import status_lines

        print("\n".join(status_lines(args.backend)))
        return 0
    if args.command == "purge":
        from vtasks.ops.prune import prune

        print(f"vtasks: purged {prune(args.backend, args.older_than, args.batch_size)} result(s)")
        return 0
    if args.command in ("retry", "queue"):
        return _run_queue_command(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


def _run_queue_command(args: argparse.Namespace) -> int:
    from vtasks.ops.queues import queue_lines
    from vtasks.ops.retry import retry_lines

    try:
        if args.command == "retry":
            lines = retry_lines(vars(args))
        else:
            lines = queue_lines(vars(args), _confirm)
    except TypeError as exc:
        print(f"vtasks: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


def _confirm(question: str) -> bool:
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:
        return False


def _run_scheduler(args: argparse.Namespace) -> int:
    """A lone scheduler: ``VTASKS_SCHEDULE``, with the YAML's schedules (and backend) when given."""
    from vtasks.config import loader, sources
    from vtasks.core.errors import ConfigError
    from vtasks.runtime import exitcodes
    from vtasks.scheduler import run_scheduler

    backend, entries = args.backend, {}
    if args.config:
        try:
            topology = loader.load([sources.defaults(), sources.yaml_file(args.config)]).topology
        except ConfigError as exc:
            lines = "".join(f"\n  {line}" for line in str(exc).splitlines())
            print(f"vtasks: invalid configuration ({args.config}):{lines}", file=sys.stderr)
            return exitcodes.USAGE
        backend, entries = backend or topology.backend, topology.scheduler.entries()
    heap.settle()
    return run_scheduler(backend or "default", entries)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
