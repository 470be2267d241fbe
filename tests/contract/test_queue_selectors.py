"""The queue-selector part of the driver contract: the known queues and claims by priority across
the queues one selector matches (``"*"``, ``"email*"``)."""

from __future__ import annotations

from django.utils import timezone

from tests.contract import test_driver_contract as contract
from tests.contract.test_driver_contract import ALL_DRIVERS, enqueue
from vtasks.drivers.base import Driver

make_driver = contract.make_driver
driver = contract.driver


@ALL_DRIVERS
class TestSelectors:
    async def test_known_queues_lists_the_queues_with_waiting_tasks(
        self, driver: Driver, alias: str
    ) -> None:
        assert await driver.known_queues() == []
        await enqueue(alias, queue_name="email.high")
        await enqueue(alias, queue_name="email.low", run_after=timezone.now().replace(year=2100))
        await enqueue(alias, queue_name="default")
        assert sorted(await driver.known_queues()) == ["default", "email.high", "email.low"]
        if alias != "valkey":  # Valkey keeps every queue ever used (a set written at enqueue)
            await driver.claim(["default"], 10, "p-1")
            assert sorted(await driver.known_queues()) == ["email.high", "email.low"]

    async def test_claim_by_priority_across_queues(self, driver: Driver, alias: str) -> None:
        a_low = await enqueue(alias, queue_name="email.a", priority=0)
        b_high = await enqueue(alias, queue_name="email.b", priority=50)
        a_high = await enqueue(alias, queue_name="email.a", priority=50)
        b_top = await enqueue(alias, queue_name="email.b", priority=100)
        other = await enqueue(alias, queue_name="other", priority=100)
        queues = ["email.a", "email.b"]
        assert await driver.claim_by_priority(queues, 0, "p-1") == []
        first = [c.id for c in await driver.claim_by_priority(queues, 2, "p-1")]
        assert first[0] == b_top
        # Within priority 50: FIFO on the SQL stores; queue order on Valkey (per-queue sequences).
        assert first[1] == (a_high if alias == "valkey" else b_high)
        rest = [c.id for c in await driver.claim_by_priority(queues, 5, "p-1")]
        assert sorted(rest) == sorted({a_low, b_high, a_high} - set(first))
        assert rest[-1] == a_low
        assert await driver.claim_by_priority(queues, 5, "p-1") == []
        assert [c.id for c in await driver.claim(["other"], 5, "p-1")] == [other]

    async def test_claim_by_priority_takes_delayed_tasks_once_due(
        self, driver: Driver, alias: str
    ) -> None:
        ready = await enqueue(alias, queue_name="email.a")
        due = await enqueue(alias, queue_name="email.b", run_after=timezone.now())
        claimed = await driver.claim_by_priority(["email.a", "email.b"], 5, "p-1")
        assert sorted(c.id for c in claimed) == sorted([ready, due])
