"""The Valkey backend and driver on a real 3-master cluster (``tests/valkey_servers.py``).

Nothing here is new test logic: the storage contract, the Valkey-only tests, the queue controls
and a handful of backend tests run again with the ``valkey`` TASKS alias pointed at the cluster
(a ``redis+cluster://`` URL). Each queue sits in its own slot and the global keys in another, so
any script that mixed them, or a multi-key command across queues, fails here with CROSSSLOT.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.tasks import task_backends

from tests import tasks
from tests.contract import test_concurrency_slots as slots
from tests.contract import test_driver_contract as contract
from tests.contract.test_driver_contract import make_driver  # noqa: F401
from tests.contract.test_valkey_driver import (  # noqa: F401 (tests and fixtures run here again)
    test_a_cancelled_wait_keeps_its_pop_for_the_next_wait,
    test_a_unique_key_admits_one_of_20_concurrent_enqueuers,
    test_an_enqueue_wakes_a_blocked_worker_at_once,
    test_enqueue_many_with_unique_keys_and_several_queues,
    test_every_key_of_a_queue_shares_its_hash_tag,
    test_full_priority_range_then_fifo,
    test_purge_older_than_deletes_finished_results,
    test_the_dead_letter_store_keeps_the_newest_failures,
    test_two_claimers_racing_for_10000_messages_take_each_once,
)
from tests.contract.test_valkey_finished import (  # noqa: F401
    test_a_dead_claimers_final_failure_and_a_revoke_count_as_failed,
    test_a_worker_counts_its_finished_tasks_per_queue_and_status,
    test_each_counter_sits_in_its_queue_slot_and_expires,
    test_retries_are_no_finishes_and_a_batch_adds_its_sums,
)
from tests.contract.test_valkey_queues import (  # noqa: F401
    qdriver,
    test_a_due_retry_wakes_an_idle_worker_at_once,
    test_a_paused_queue_is_skipped_by_claims,
    test_a_recovered_task_wakes_an_idle_worker,
    test_an_idle_worker_runs_a_0_delay_retry_well_within_its_poll,
    test_clear_removes_waiting_tasks_but_never_running_ones,
    test_processes_and_status_lines,
    test_queue_depths_count_each_state,
    test_resume_wakes_an_idle_worker,
    test_retry_all_failed_keeps_order_and_unique_keys,
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
    test_dynamic_schedules_add_list_remove,
    test_valkey_slot_key_refuses_older_slots_and_expires,
)
from tests.integration.test_worker import (  # noqa: F401
    test_a_delayed_task_waits_for_its_time,
    test_queue_order_across_listed_queues,
    test_retries_then_success,
    test_retries_with_backoff_end_in_the_dead_letter_state,
    test_sync_async_and_context_tasks_succeed_with_django_fields,
    test_throttle_holds_the_key_for_its_ttl,
    test_unique_lock_is_released_when_the_task_finishes,
)
from tests.valkey_rerun import alias, kind, unparametrised, valkey_alias_at  # noqa: F401
from tests.valkey_servers import Cluster, valkey_cluster  # noqa: F401
from vtasks.drivers.valkey.client import sync_client
from vtasks.drivers.valkey.driver import ValkeyDriver


@pytest.fixture(scope="module", autouse=True)
def cluster_alias(valkey_cluster: Cluster) -> Iterator[None]:  # noqa: F811
    with valkey_alias_at(valkey_cluster.url, "cl"):
        yield


@pytest.fixture
def driver(valkey_driver: ValkeyDriver) -> ValkeyDriver:
    """The contract classes' ``driver``: here, a Valkey driver on the cluster."""
    return valkey_driver


def _on_cluster(cls: type) -> type:
    return unparametrised(cls, "OnCluster")


TestClaimOnCluster = _on_cluster(contract.TestClaim)
TestFinishOnCluster = _on_cluster(contract.TestFinish)
TestProcessesOnCluster = _on_cluster(contract.TestProcesses)
TestSlotsOnCluster = _on_cluster(slots.TestSlots)


def test_the_alias_really_is_a_cluster(valkey: str) -> None:
    from valkey.cluster import ValkeyCluster

    backend = task_backends["valkey"]
    assert backend.cluster and isinstance(sync_client(backend.url), ValkeyCluster)
    assert len(sync_client(backend.url).get_primaries()) == 3


def test_queues_spread_over_the_nodes_and_still_work(valkey: str) -> None:
    from tests.helpers import work
    from vtasks.drivers.valkey.keys import queue_keys

    backend = task_backends["valkey"]
    client = sync_client(backend.url)
    names = [f"q{i}" for i in range(12)]
    nodes = {client.get_node_from_key(queue_keys(backend.prefix, n).ready).name for n in names}
    assert len(nodes) == 3  # twelve queues land on every primary
    results = [tasks.add.using(backend="valkey", queue_name=n).enqueue(i, i) for i, n in
               enumerate(names)]  # fmt: skip
    assert work("valkey", queues=names).processed == 12
    for i, result in enumerate(results):
        result.refresh()
        assert result.return_value == 2 * i


def test_the_cluster_option_with_a_plain_url(
    valkey: str,
    valkey_cluster: Cluster,  # noqa: F811
    settings_override: Any,
) -> None:
    from tests.helpers import work

    plain = valkey_cluster.url.replace("redis+cluster://", "redis://")
    settings_override("valkey", BROKER_URL=plain, CLUSTER=True)
    backend = task_backends["valkey"]
    assert backend.url == plain and backend.cluster and backend.create_driver().cluster
    result = tasks.add.using(backend="valkey", queue_name="plain").enqueue(20, 22)
    assert backend.get_result(result.id).status == "READY"
    assert backend.queue_depths(["plain"])["plain"]["ready"] == 1
    work("valkey", queues=["plain"])
    result.refresh()
    assert result.return_value == 42
