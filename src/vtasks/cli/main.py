"""``vtasks``: the command line. The one place that sets Django up for the runtime."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence


def _django_setup(settings_module: str | None, pythonpath: str | None) -> None:
    if pythonpath:
        sys.path.insert(0, os.path.abspath(pythonpath))
    elif os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    if settings_module:
        os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        raise SystemExit("vtasks: set DJANGO_SETTINGS_MODULE or pass --settings")
    import django

    django.setup()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vtasks", description="vtasks: Django background tasks")
    parser.add_argument("--settings", help="Django settings module (else DJANGO_SETTINGS_MODULE)")
    parser.add_argument("--pythonpath", help="a directory to add to sys.path")
    parser.add_argument("--log-level", default=os.environ.get("VTASKS_LOG_LEVEL", "INFO"))
    from vtasks.serve import add_worker_arguments

    commands = parser.add_subparsers(dest="command", required=True)
    add_worker_arguments(commands.add_parser("worker", help="run a worker process"))
    purge = commands.add_parser("purge", help="delete finished results past their retention")
    purge.add_argument("--backend", default="default")
    purge.add_argument(
        "--older-than", type=float, help="seconds: also delete results finished earlier"
    )
    purge.add_argument("--batch-size", type=int, default=1000)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _django_setup(args.settings, args.pythonpath)
    if not logging.getLogger("vtasks").handlers and not logging.getLogger().handlers:
        # The project's LOGGING configures nothing for vtasks: log to stderr.
        logging.basicConfig(
            level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
        )
    if args.command == "worker":
        from vtasks.serve import run_worker

        if args.concurrency < 1:
            raise SystemExit(f"vtasks: --concurrency must be >= 1, got {args.concurrency}")
        return run_worker(
            backend=args.backend, queues=args.queues or ["default"], concurrency=args.concurrency,
            burst=args.burst, worker_id=args.worker_id,
        )  # fmt: skip
    if args.command == "purge":
        from vtasks.ops.prune import prune

        print(f"vtasks: purged {prune(args.backend, args.older_than, args.batch_size)} result(s)")
        return 0
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
