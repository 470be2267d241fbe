"""Queue selectors (``"*"``, ``"email*"``) and node roles (``--only-work``, ``--only-schedule``,
``--skip-scheduler``): resolution, validation, and what they make the supervisor and worker do."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from vtasks.cli.main import _parser
from vtasks.cli.supervise import _cli_values
from vtasks.config import env, loader, sources
from vtasks.core.errors import ConfigError
from vtasks.core.selectors import Step, resolve, selector_problem
from vtasks.runtime.selection import QueuePlan
from vtasks.runtime.topology import child_specs
from vtasks.runtime.worker import Worker, WorkerSettings

KNOWN = ["default", "email", "email.high", "email.low", "reports"]


def test_order_across_entries_and_a_group_per_selector():
    assert resolve(["email*", "default"], KNOWN) == (
        Step(("email", "email.high", "email.low"), by_priority=True),
        Step(("default",)),
    )
    # Plain names run together in one step; a selector matching one queue joins them.
    assert resolve(["default", "rep*", "urgent"], KNOWN) == (
        Step(("default", "reports", "urgent")),
    )
    assert resolve(["nothing*"], KNOWN) == ()


def test_a_queue_named_literally_is_served_at_its_own_place():
    assert resolve(["*", "email.low"], KNOWN, exclude=["reports"]) == (
        Step(("default", "email", "email.high"), by_priority=True),
        Step(("email.low",)),
    )
    assert resolve(["email*", "*"], KNOWN) == (
        Step(("email", "email.high", "email.low"), by_priority=True),
        Step(("default", "reports"), by_priority=True),
    )


@pytest.mark.parametrize("entry", ["*", "email*", "email", "a.b-c_d"])
def test_good_entries(entry):
    assert selector_problem(entry) is None


@pytest.mark.parametrize("entry", ["**", "a*b", "*email"])
def test_a_star_only_ends_a_selector(entry):
    assert "may only end a queue selector" in str(selector_problem(entry))


def load(*layers: sources.Layer) -> loader.Resolved:
    return loader.load([sources.defaults(), *layers])


def test_selectors_in_the_yaml_reach_the_workers(tmp_path):
    path = tmp_path / "vtasks.yml"
    path.write_text("workers:\n  - {name: mail, queues: ['email*', default], concurrency: 2}\n")
    [spec] = child_specs(load(sources.yaml_file(path)).topology)
    assert spec.worker.queues == ("email*", "default")


def test_a_bad_selector_is_refused_with_its_source(tmp_path):
    path = tmp_path / "vtasks.yml"
    path.write_text("workers:\n  - {name: mail, queues: ['em*ail'], concurrency: 2}\n")
    with pytest.raises(ConfigError) as info:
        load(sources.yaml_file(path))
    assert "may only end a queue selector" in str(info.value)
    assert "workers[0].queues[0]" in str(info.value)


def test_a_bad_selector_on_the_worker_command_line_is_refused():
    with pytest.raises(ConfigError, match=r"--queues: '\*' may only end"):
        env.QUEUES_SETTING.parse(["a*b"], "--queues")
    assert env.QUEUES_SETTING.parse(["email*", "*"], "--queues") == ["email*", "*"]


def supervise_topology(*argv: str, environ: dict[str, str] | None = None, yaml: Any = None):
    args = _parser().parse_args(["supervise", *argv])
    layers = [sources.environment(environ or {}), sources.command_line(_cli_values(args))]
    if yaml is not None:
        layers.insert(0, sources.yaml_file(yaml))
    return load(*layers)


def kinds(resolved: loader.Resolved) -> list[str]:
    return [spec.kind for spec in child_specs(resolved.topology)]


def test_roles_on_the_command_line(tmp_path):
    yaml = tmp_path / "vtasks.yml"
    yaml.write_text("scheduler: {enabled: true}\nworkers:\n  - {name: a, processes: 2}\n")
    assert kinds(supervise_topology(yaml=yaml)) == ["worker", "worker", "scheduler"]
    assert kinds(supervise_topology("--only-work", yaml=yaml)) == ["worker", "worker"]
    assert kinds(supervise_topology("--skip-scheduler", yaml=yaml)) == ["worker", "worker"]
    assert kinds(supervise_topology("--only-schedule", yaml=yaml)) == ["scheduler"]
    # --only-schedule runs the scheduler even where the configuration leaves it off.
    assert kinds(supervise_topology("--only-schedule")) == ["scheduler"]
    resolved = supervise_topology("--skip-scheduler", yaml=yaml)
    assert resolved.origins["scheduler.enabled"] == "command line"


def test_roles_layering_cli_over_env_over_yaml(tmp_path):
    yaml = tmp_path / "vtasks.yml"
    yaml.write_text("roles: schedule\n")
    assert kinds(supervise_topology(yaml=yaml)) == ["scheduler"]
    environ = {"VTASKS_ROLES": "work"}
    assert kinds(supervise_topology(yaml=yaml, environ=environ)) == ["worker"]
    resolved = supervise_topology("--only-schedule", yaml=yaml, environ=environ)
    assert kinds(resolved) == ["scheduler"]
    assert resolved.origins["roles"] == "command line"
    with pytest.raises(ConfigError, match="roles"):
        supervise_topology(environ={"VTASKS_ROLES": "everything"})


def test_role_flags_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["supervise", "--only-work", "--only-schedule"])
    assert "not allowed with" in capsys.readouterr().err


class FakeDriver:
    """Records the claim calls; ``known`` is what ``known_queues`` answers."""

    def __init__(self, known: list[str], gives: int = 2) -> None:
        self.known = known
        self.gives = gives
        self.calls: list[tuple[str, tuple[str, ...], int]] = []
        self.listed = 0

    async def known_queues(self) -> list[str]:
        self.listed += 1
        return list(self.known)

    async def next_due(self, queues: Any) -> None:
        return None

    async def wait_for_work(self, queues: Any, timeout: float) -> None:
        await asyncio.sleep(timeout)

    async def claim(self, queues: Any, limit: int, process_id: str) -> list[Any]:
        self.calls.append(("claim", tuple(queues), limit))
        return []

    async def claim_by_priority(self, queues: Any, limit: int, process_id: str) -> list[Any]:
        self.calls.append(("by_priority", tuple(queues), limit))
        if "boom" in queues:
            raise RuntimeError("boom")
        return [object()] * min(limit, self.gives)


def worker(driver: FakeDriver, queues: tuple[str, ...]) -> Worker:
    settings = WorkerSettings(queues=queues, concurrency=10, prefetch=0)
    return Worker(driver, executor=None, settings=settings, process_id="p")  # type: ignore[arg-type]


async def test_the_plan_claims_each_step_and_refreshes():
    driver = FakeDriver(["email.a", "email.b", "default", "bulk"])
    plan = QueuePlan(["email*", "default"], exclude=["email.b"])
    await plan.refresh(driver)  # type: ignore[arg-type]
    assert plan.serving == ["email.a", "default"]
    driver.known.append("email.c")
    await plan.refresh(driver)  # type: ignore[arg-type]
    assert plan.serving == ["email.a", "email.c", "default"]
    assert len(await plan.claim(driver, 10, "p")) == 2  # type: ignore[arg-type]
    assert driver.calls == [
        ("by_priority", ("email.a", "email.c"), 10),
        ("claim", ("default",), 8),
    ]


async def test_a_failed_step_keeps_what_earlier_steps_claimed():
    driver = FakeDriver(["a", "b", "boom", "c"])
    plan = QueuePlan(["*"])
    plan.steps = (Step(("a", "b"), by_priority=True), Step(("boom", "c"), by_priority=True))
    assert len(await plan.claim(driver, 10, "p")) == 2  # type: ignore[arg-type]
    plan.steps = plan.steps[1:]
    with pytest.raises(RuntimeError):
        await plan.claim(driver, 10, "p")  # type: ignore[arg-type]


async def test_a_failed_listing_keeps_the_plain_names_then_the_last_plan():
    driver = FakeDriver(["email.a"])
    plan = QueuePlan(["email*", "default"])
    real = driver.known_queues

    async def fail() -> list[str]:
        raise OSError("down")

    driver.known_queues = fail  # type: ignore[method-assign]
    await plan.refresh(driver)  # type: ignore[arg-type]
    assert plan.serving == ["default"]
    driver.known_queues = real  # type: ignore[method-assign]
    await plan.refresh(driver)  # type: ignore[arg-type]
    driver.known_queues = fail  # type: ignore[method-assign]
    await plan.refresh(driver)  # type: ignore[arg-type]
    assert plan.serving == ["email.a", "default"]


async def test_a_worker_with_selectors_claims_through_its_plan():
    driver = FakeDriver(["email.a", "email.b"], gives=0)
    w = worker(driver, ("email*",))
    plan = QueuePlan(["email*"])
    await plan.refresh(driver)  # type: ignore[arg-type]
    loop = asyncio.create_task(w._claim_loop([], plan))
    await asyncio.sleep(0.05)
    w.stop()
    await asyncio.wait_for(loop, 5)
    assert driver.calls[0] == ("by_priority", ("email.a", "email.b"), 10)


async def test_plain_names_never_list_the_queues():
    driver = FakeDriver(["other"])
    w = worker(driver, ("default",))
    loop = asyncio.create_task(w._claim_loop(["default"]))
    await asyncio.sleep(0.05)
    w.stop()
    await asyncio.wait_for(loop, 5)
    assert driver.listed == 0
    assert driver.calls and all(call[:2] == ("claim", ("default",)) for call in driver.calls)
