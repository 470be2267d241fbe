"""Security properties that hold by construction: no code execution from data, local-only defaults.

The source scan has no allow-list: a need for ``pickle`` or ``eval`` is a design discussion first.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from vtasks.config.models import Metrics, Topology

SRC = Path(__file__).resolve().parents[2] / "src" / "vtasks"
#: Modules that turn bytes into code or arbitrary objects.
FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle",
                     "jsonpickle"}  # fmt: skip
#: Builtins that run text as code.
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
#: PyYAML entry points that build arbitrary Python objects.
UNSAFE_YAML = {"load", "load_all", "unsafe_load", "unsafe_load_all", "full_load", "full_load_all"}


def _findings(path: Path, root: Path = SRC.parent) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            found += [f"{where}: import {a.name}" for a in node.names if _forbidden(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and _forbidden(node.module):
            found.append(f"{where}: from {node.module} import ...")
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                found.append(f"{where}: {func.id}()")
            elif (
                isinstance(func, ast.Attribute) and func.attr in UNSAFE_YAML
                and isinstance(func.value, ast.Name) and func.value.id == "yaml"
            ):  # fmt: skip
                found.append(f"{where}: yaml.{func.attr}()")
    return found


def _forbidden(module: str) -> bool:
    return module.split(".")[0] in FORBIDDEN_MODULES


def test_no_pickle_marshal_eval_exec_or_unsafe_yaml_in_the_package():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 50
    findings = [f for path in files for f in _findings(path)]
    assert findings == []


def test_the_scan_finds_what_it_looks_for(tmp_path):
    bad = tmp_path / "vtasks" / "bad.py"
    bad.parent.mkdir()
    bad.write_text(
        "import pickle\nfrom marshal import loads\nimport yaml\n"
        "eval('1')\nexec('x = 1')\nyaml.load('a', Loader=None)\nyaml.safe_load('a')\n"
    )
    assert [f.split(": ", 1)[1] for f in _findings(bad, tmp_path)] == [
        "import pickle", "from marshal import ...", "eval()", "exec()", "yaml.load()",
    ]  # fmt: skip


def test_the_metrics_and_health_server_binds_loopback_by_default():
    assert Metrics().address == "127.0.0.1"
    assert Topology().metrics is None  # and it is off unless configured


@pytest.mark.parametrize(
    "path", ["os.system", "subprocess.run", "builtins.eval", "tests.tasks.not_a_task"]
)
def test_a_message_naming_a_callable_that_is_not_a_task_is_refused(path):
    from vtasks.core.errors import UnknownTask
    from vtasks.execution import _resolve

    found = _resolve(path)
    assert isinstance(found, UnknownTask) and "not a function declared with @task" in str(found)
