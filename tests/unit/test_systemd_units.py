"""The systemd units: ``systemd-analyze verify`` finds no error, and they say what the runtime does.

verify checks that ExecStart's binary exists, so the units are verified as copies whose binary is
this Python; every other line is verified as shipped. verify exits 0 even for an unknown key or an
unparsable value (it only warns), so any message about the unit counts as a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vtasks.config.models import Topology

ROOT = Path(__file__).resolve().parents[2]
UNITS = {"vtasks.service": "vtasks.service", "vtasks@.service": "vtasks@demo.service"}
BINARY = "/srv/app/.venv/bin/vtasks"


@pytest.fixture(scope="module")
def analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI: systemd-analyze is missing (apt-get install systemd)")
        pytest.skip("systemd-analyze is not installed")
    return tool


def verify(analyze: str, text: str, name: str, directory: Path) -> list[str]:
    """verify's messages about ``text`` installed as ``name`` (a template as an instance)."""
    unit = directory / name
    unit.write_text(text.replace(BINARY, sys.executable))
    run = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0"},
    )  # fmt: skip
    messages = [line for line in (run.stdout + run.stderr).splitlines() if line.strip()]
    return messages if messages or run.returncode == 0 else [f"exit status {run.returncode}"]


@pytest.mark.parametrize("source", list(UNITS))
def test_the_unit_verifies_clean(analyze, source, tmp_path):
    text = (ROOT / "systemd" / source).read_text()
    assert BINARY in text  # else the rewrite above verifies nothing
    assert verify(analyze, text, UNITS[source], tmp_path) == []


def test_verify_catches_a_broken_unit(analyze, tmp_path):
    text = (ROOT / "systemd" / "vtasks.service").read_text()
    broken = text.replace("Type=notify", "Type=notfy").replace("WatchdogSec=30", "WatchdogSec=x")
    messages = verify(analyze, broken, "vtasks.service", tmp_path)
    assert any("notfy" in m for m in messages) and any("sec value" in m for m in messages)


def settings_of(source: str) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in (ROOT / "systemd" / source).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            values.setdefault(key.strip(), []).append(value.strip())
    return values


@pytest.mark.parametrize("source", list(UNITS))
def test_the_unit_matches_the_supervisor(source):
    unit = settings_of(source)
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    assert unit["KillMode"] == ["mixed"] and unit["Restart"] == ["on-failure"]
    assert float(unit["WatchdogSec"][0]) >= 2 * 1.0  # the loop wakes at least every second
    # TERM -> drain for shutdown_timeout -> KILL after a 5 s margin: systemd must wait longer.
    shutdown_timeout = Topology.model_fields["shutdown_timeout"].default
    assert float(unit["TimeoutStopSec"][0]) > shutdown_timeout + 5
    assert unit["RestartPreventExitStatus"] == ["2 4"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    for hardening in ("NoNewPrivileges", "ProtectSystem", "PrivateTmp", "SystemCallFilter"):
        assert hardening in unit
    config = unit["ExecStart"][0].split("--config ")[1]
    assert config == ("/etc/vtasks/%i.yml" if "@" in source else "/etc/vtasks/vtasks.yml")
