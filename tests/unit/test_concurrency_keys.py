"""``@task(concurrency_key=...)``: checked at definition, formatted per call at enqueue."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.tasks import TaskResultStatus, task_backends
from django.tasks.exceptions import InvalidTask
from django.test import override_settings

from tests import tasks
from vtasks import task
from vtasks.core.errors import ConcurrencyKeyError
from vtasks.drivers.base import Claim
from vtasks.runtime.admission import limited, spec_of
from vtasks.wire import codec


@task(concurrency_key="acct:{account_id}:{region}", concurrency_limit=3, timeout=5)
def regional(account_id: int, region: str = "eu") -> None: ...


@task(takes_context=True, concurrency_key="c:{user}", on_conflict="discard")
def with_context(context, user: str) -> None: ...


@task(concurrency_key="kw:{tenant}")
def loose(**kwargs) -> None: ...


@task(concurrency_key="{account[zone]}")
def indexed(account: dict) -> None: ...


def plain(a: int) -> None: ...


def stored_options(task_obj, *args, **kwargs):
    new = task_backends["default"].prepare(task_obj, args, kwargs)
    return codec.loads(new.options_json or new.plan.options_json)


def test_the_key_is_formatted_from_the_bound_call_with_defaults():
    assert stored_options(regional, 7) == {
        "timeout": 5,
        "concurrency": {"key": "acct:7:eu", "limit": 3, "on_conflict": "block"},
    }
    assert stored_options(regional, region="us", account_id=8)["concurrency"]["key"] == "acct:8:us"


def test_a_context_parameter_and_var_keywords():
    spec = stored_options(with_context, "ann")["concurrency"]
    assert spec == {"key": "c:ann", "limit": 1, "on_conflict": "discard"}
    assert stored_options(loose, tenant="t1")["concurrency"]["key"] == "kw:t1"
    with pytest.raises(ConcurrencyKeyError, match="'tenant'"):
        stored_options(loose, other=1)


def test_bad_calls_fail_at_enqueue_naming_the_problem():
    with pytest.raises(TypeError, match="per_account"):
        stored_options(tasks.per_account, "path")  # account_id missing
    assert stored_options(indexed, {"zone": "z1"})["concurrency"]["key"] == "z1"
    with pytest.raises(ConcurrencyKeyError, match="'zone'"):
        stored_options(indexed, {"region": 1})


def test_tasks_without_a_key_store_the_shared_options():
    new = task_backends["default"].prepare(tasks.add, (1, 2), {})
    assert new.options_json is None and new.plan.concurrency is None


def test_long_keys_are_shortened_to_a_stable_digest():
    key = stored_options(tasks.exclusive, "p", "x" * 500)["concurrency"]["key"]
    assert (
        len(key) <= 200
        and key == stored_options(tasks.exclusive, "q", "x" * 500)["concurrency"]["key"]
    )
    assert key != stored_options(tasks.exclusive, "p", "x" * 499 + "y")["concurrency"]["key"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"concurrency_key": "k:{a}", "concurrency_limit": 0}, "concurrency_limit"),
        ({"concurrency_key": "k:{a}", "concurrency_limit": True}, "concurrency_limit"),
        ({"concurrency_key": "k:{a}", "on_conflict": "queue"}, "on_conflict"),
        ({"concurrency_key": "k:{b}"}, "'b', which is not a parameter"),
        ({"concurrency_key": "k:{}"}, "name the parameter"),
        ({"concurrency_key": "k:{a"}, "not a valid template"),
        ({"concurrency_key": ""}, "non-empty"),
    ],
)
def test_bad_definitions_fail_at_definition(options, message):
    with pytest.raises(InvalidTask, match=message):
        task(plain, **options)


def test_using_can_change_the_limit_and_is_checked():
    assert tasks.per_account.using(concurrency_limit=2).concurrency_limit == 2
    with pytest.raises(InvalidTask):
        tasks.per_account.using(concurrency_limit=-1)


def test_the_immediate_backend_accepts_and_ignores_the_options(tmp_path):
    immediate = {"BACKEND": "vtasks.backends.immediate.ImmediateBackend", "QUEUES": []}
    with override_settings(TASKS={**settings.TASKS, "immediate": immediate}):
        first = tasks.exclusive.using(backend="immediate").enqueue(str(tmp_path / "o"), "a")
        second = tasks.exclusive.using(backend="immediate").enqueue(str(tmp_path / "o"), "a")
        assert first.status == second.status == TaskResultStatus.SUCCESSFUL
        with pytest.raises(TypeError):
            tasks.per_account.using(backend="immediate").enqueue()


def test_worker_side_spec_reading():
    def claim(options):
        return Claim(
            id="t", task_path="p", queue_name="q", priority=0, args=[], kwargs={}, backend="b",
            run_after=None, enqueued_at=None, started_at=None, last_attempted_at=None,  # type: ignore[arg-type]
            attempt=1, max_attempts=1, worker_ids=[], errors=[], options=options,
        )  # fmt: skip

    good = {"concurrency": {"key": "k", "limit": 2, "on_conflict": "discard"}}
    assert limited([claim({}), claim(good)]) and not limited([claim({"timeout": 1})])
    assert spec_of(claim(good)) == ("k", 2, "discard")
    assert spec_of(claim({"concurrency": {"key": "k", "limit": 0}})) is None
    assert spec_of(claim({"concurrency": {"key": "k", "limit": 1}})) == ("k", 1, "block")
