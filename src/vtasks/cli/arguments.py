"""The command-line flags of ``supervise``, ``check`` and ``health``, apart from what runs them.

Kept free of the configuration machinery (pydantic, YAML): every ``vtasks`` command builds the
whole parser, and ``vtasks worker`` should not pay for importing what only ``supervise`` uses.
"""

from __future__ import annotations

import argparse
import os

from vtasks.config import env


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-C", default=os.environ.get(env.CONFIG), metavar="PATH",
                        help=f"the YAML topology (default: ${env.CONFIG}; none: settings only)")  # fmt: skip
    parser.add_argument("--backend", help="the TASKS alias (overrides the file)")
    parser.add_argument("--queue", "-q", action="append", dest="queues", metavar="NAME",
                        help="default queues of pools that list none, repeatable; \"*\" is "
                        "every queue, \"email*\" every queue starting with email")  # fmt: skip
    parser.add_argument("--concurrency", "-c", type=int, help="default concurrency of pools")
    parser.add_argument("--shutdown-timeout", type=float, help="seconds children get to drain")
    parser.add_argument("--log-format", help="text or json")


def add_role_arguments(parser: argparse.ArgumentParser) -> None:
    """What this node runs (the topology's ``roles`` and ``scheduler.enabled``)."""
    roles = parser.add_mutually_exclusive_group()
    roles.add_argument("--only-work", dest="roles", action="store_const", const="work",
                       help="run the worker pools only, never the scheduler (roles: work)")  # fmt: skip
    roles.add_argument("--only-schedule", dest="roles", action="store_const", const="schedule",
                       help="run the scheduler only, whatever scheduler.enabled says "
                       "(roles: schedule)")  # fmt: skip
    roles.add_argument("--skip-scheduler", dest="scheduler_enabled", action="store_const",
                       const=False, help="run everything but the scheduler "
                       "(scheduler.enabled: false)")  # fmt: skip


def add_supervise_arguments(parser: argparse.ArgumentParser) -> None:
    add_check_arguments(parser)
    add_role_arguments(parser)
    parser.add_argument("--burst", action="store_true",
                        help="children exit once their queues are empty; exit 0 when all did")  # fmt: skip


def add_health_arguments(parser: argparse.ArgumentParser) -> None:
    add_check_arguments(parser)
    parser.add_argument(
        "--health-file", help="the file to judge (default: the topology's health_file)"
    )
    parser.add_argument("--ignore-process-table", action="store_true",
                        help="judge the file alone, not the freshness of the supervisor's "
                        "process-table row it reports")  # fmt: skip
    parser.add_argument("--max-age", type=float,
                        help="seconds after which the file is stale (default: alive_threshold)")  # fmt: skip
