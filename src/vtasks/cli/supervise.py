"""``vtasks supervise`` and ``vtasks check``: resolve the layered configuration, then act on it.

Resolution order matters: the YAML, the environment and the command line may name the Django
settings module, and Django's ``VTASKS_*`` settings are a layer below the YAML, so Django is set up
between reading the upper layers and merging them all.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any

from vtasks.cli.setup import django_setup
from vtasks.config import loader, sources
from vtasks.config.explain import explain
from vtasks.config.loader import Resolved
from vtasks.config.messages import origin_of
from vtasks.core import heap
from vtasks.core.errors import ConfigError
from vtasks.runtime import exitcodes

if TYPE_CHECKING:
    from vtasks.config.models import Topology
    from vtasks.runtime.topology import Plan

logger = logging.getLogger("vtasks.supervisor")

NOTHING_TO_RUN = "vtasks: nothing to run: --burst with roles: schedule (a scheduler never ends)"


def resolve(args: argparse.Namespace) -> Resolved:
    """Every layer, merged and validated; raises ``ConfigError`` naming each bad value's source."""
    upper = [
        sources.yaml_file(args.config) if args.config else sources.Layer(name="yaml", values={}),
        sources.environment(),
        sources.command_line(_cli_values(args)),
    ]
    layers = [sources.defaults()]
    settings_module = loader.peek(upper, "django_settings")
    if isinstance(settings_module, str) and settings_module:
        layers.append(sources.django_settings(_setup(settings_module)))
    resolved = loader.load([*layers, *upper])
    _check_backend(resolved)
    return resolved


def run_check(args: argparse.Namespace) -> int:
    try:
        resolved = resolve(args)
    except ConfigError as exc:
        return _invalid(args, exc)
    print(f"vtasks: configuration is valid{_named(args)}")
    for line in explain(resolved):
        print(f"  {line}")
    return exitcodes.OK


def run_supervise(args: argparse.Namespace) -> int:
    try:
        resolved = resolve(args)
    except ConfigError as exc:
        return _invalid(args, exc)
    topology = resolved.topology
    if not topology.django_settings:
        print("vtasks: set DJANGO_SETTINGS_MODULE, --settings or django_settings", file=sys.stderr)
        return exitcodes.USAGE
    from vtasks.launch import before_fork, run_child, supervisor_row
    from vtasks.observability.logformat import configure
    from vtasks.runtime.service import supervise
    from vtasks.runtime.topology import plan

    configure(args.log_level, topology.log_format)
    if topology.mode == "async":
        return _run_async(topology, args.burst)
    metrics_dir, observer = None, None
    if topology.metrics is not None and not args.burst:
        from vtasks.observability import metrics

        try:
            metrics.require()
        except ImportError as exc:
            print(f"vtasks: metrics: {exc}", file=sys.stderr)
            return exitcodes.USAGE
        # Before the first fork and the first metric: every process of the tree writes there.
        metrics_dir = metrics.multiprocess_dir()
        observer = metrics.TreeMetrics()
    try:
        first = plan(topology, burst=args.burst, metrics_dir=metrics_dir)
        if not any(spec.kind in ("worker", "scheduler") for spec in first.specs):
            print(NOTHING_TO_RUN, file=sys.stderr)
            return exitcodes.USAGE
        heap.settle()  # before the first fork: the children share the frozen start-up heap
        return supervise(
            first.specs,
            first.settings,
            run_child,
            before_fork=before_fork,
            reload=lambda: _reload(args, topology, metrics_dir),
            row=supervisor_row(topology.backend),
            observer=observer,
        )
    finally:
        if metrics_dir is not None:
            from vtasks.observability.metrics import remove_multiprocess_dir

            remove_multiprocess_dir(metrics_dir)


def _run_async(topology: Topology, burst: bool) -> int:
    from vtasks.asyncmode import run_async
    from vtasks.runtime.topology import child_specs

    specs = child_specs(topology, burst=burst)
    if not any(spec.kind in ("worker", "scheduler") for spec in specs):
        print(NOTHING_TO_RUN, file=sys.stderr)
        return exitcodes.USAGE
    heap.settle()
    return run_async(specs, topology, burst=burst)


def _reload(args: argparse.Namespace, running: Topology, metrics_dir: str | None = None) -> Plan:
    """SIGHUP: every layer read and validated again, as at start; raises ``ConfigError``.

    Django's settings are loaded once per process, so the settings module and the backend alias
    (the supervisor's own row lives there) cannot change without a restart; nor can the log
    format, which the children inherit from the supervisor's logging.
    """
    from vtasks.runtime.topology import plan

    topology = resolve(args).topology
    if topology.backend != running.backend:
        raise ConfigError(
            f"backend: cannot change on reload, restart the supervisor "
            f"(running {running.backend!r}), got {topology.backend!r}"
        )
    if topology.mode != running.mode:
        raise ConfigError(
            f"mode: cannot change on reload, restart the supervisor (running {running.mode!r}), "
            f"got {topology.mode!r}"
        )
    if topology.log_format != running.log_format:
        logger.warning(
            "vtasks: reload: log_format %r applies at the next restart", topology.log_format
        )
    if topology.metrics is not None and metrics_dir is None and not args.burst:
        # The tree's processes must write their samples from the first fork on.
        raise ConfigError("metrics: cannot be turned on by a reload, restart the supervisor")
    return plan(topology, burst=args.burst, metrics_dir=metrics_dir)


def run_health(args: argparse.Namespace) -> int:
    """Exit 0 when the supervisor's health file is fresh and no child is crash-looping, else 1."""
    from vtasks.observability.health import judge

    try:
        topology = resolve(args).topology
    except ConfigError as exc:
        return _invalid(args, exc)
    path = args.health_file or topology.health_file
    if not path:
        print(
            "vtasks: no health file: set health_file in the topology or pass --health-file",
            file=sys.stderr,
        )
        return exitcodes.USAGE
    max_age = args.max_age if args.max_age is not None else topology.alive_threshold
    problems = judge(path, max_age, check_row=not args.ignore_process_table)
    for problem in problems:
        print(f"vtasks: unhealthy: {problem}", file=sys.stderr)
    if not problems:
        print(f"vtasks: healthy ({path})")
    return 1 if problems else exitcodes.OK


def _cli_values(args: argparse.Namespace) -> dict[str, Any]:
    values = {
        "django_settings": args.settings, "backend": args.backend, "queues": args.queues,
        "concurrency": args.concurrency, "shutdown_timeout": args.shutdown_timeout,
        "log_format": args.log_format, "roles": getattr(args, "roles", None),
    }  # fmt: skip
    if getattr(args, "scheduler_enabled", None) is not None:
        values["scheduler"] = {"enabled": args.scheduler_enabled}
    return values


def _setup(settings_module: str) -> Any:
    from django.apps import apps

    if apps.ready:  # a reload: Django's settings are loaded once per process
        from django.conf import settings

        running = getattr(settings, "SETTINGS_MODULE", None)
        if settings_module != running:
            raise ConfigError(
                f"django_settings: cannot change on reload, restart the supervisor "
                f"(running {running!r}), got {settings_module!r}"
            )
        return settings
    try:
        django_setup(settings_module)
    except ImportError as exc:
        raise ConfigError(f"django_settings: cannot import {settings_module!r}: {exc}") from None
    from django.conf import settings

    return settings


def _check_backend(resolved: Resolved) -> None:
    """The TASKS alias must exist: caught here, not as a boot error in every child."""
    if not resolved.topology.django_settings:
        return
    from django.conf import settings

    aliases = list(getattr(settings, "TASKS", {}) or {"default": None})
    alias = resolved.topology.backend
    if alias not in aliases:
        where = origin_of("backend", resolved.origins) or "default"
        raise ConfigError(
            f"backend: no TASKS alias {alias!r} in the Django settings (have {aliases}), got {alias!r} ({where})"
        )


def _named(args: argparse.Namespace) -> str:
    return f" ({args.config})" if args.config else ""


def _invalid(args: argparse.Namespace, exc: ConfigError) -> int:
    print(f"vtasks: invalid configuration{_named(args)}:", file=sys.stderr)
    for line in str(exc).splitlines():
        print(f"  {line}", file=sys.stderr)
    return exitcodes.USAGE
