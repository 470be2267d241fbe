"""What a SIGHUP reads: every layer again, validated as at start; what cannot change is refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from vtasks.cli.main import _parser
from vtasks.cli.supervise import _reload, resolve
from vtasks.core.errors import ConfigError

POOL = "workers:\n  - name: w\n    queues: [default]\n    concurrency: {c}\n    processes: 2\n"


def reload_after(tmp_path: Path, before: str, after: str):
    path = tmp_path / "vtasks.yml"
    path.write_text(before)
    args = _parser().parse_args(["--settings", "tests.settings", "supervise", "-C", str(path)])
    running = resolve(args).topology
    path.write_text(after)
    return _reload(args, running)


def test_a_reload_reads_the_file_again(tmp_path):
    plan = reload_after(tmp_path, POOL.format(c=4), POOL.format(c=6) + "shutdown_timeout: 7\n")
    assert [(s.name, s.worker.concurrency) for s in plan.specs] == [("w.1", 6), ("w.2", 6)]
    assert plan.settings.shutdown_timeout == 7
    assert plan.settings.heartbeat_interval == 0.2  # the Django settings layer, as at start


def test_an_invalid_file_names_path_rule_value_and_line(tmp_path):
    with pytest.raises(ConfigError) as info:
        reload_after(tmp_path, POOL.format(c=4), POOL.format(c=0))
    assert (
        str(info.value) == f"workers[0].concurrency: must be >= 1, got 0 ({tmp_path}/vtasks.yml:4)"
    )


def test_the_backend_cannot_change(tmp_path):
    with pytest.raises(ConfigError, match="backend: cannot change on reload, restart the"):
        reload_after(tmp_path, POOL.format(c=4), "backend: pg\n" + POOL.format(c=4))


def test_the_django_settings_module_cannot_change(tmp_path, monkeypatch):
    path = tmp_path / "vtasks.yml"
    path.write_text(POOL.format(c=4))
    args = _parser().parse_args(["supervise", "-C", str(path)])
    running = resolve(args).topology
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "other.settings")
    with pytest.raises(ConfigError, match="django_settings: cannot change on reload"):
        _reload(args, running)
