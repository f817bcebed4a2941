"""The admission gate on its own: first come first served, a bounded queue, a bounded
wait, and no place lost when a waiter gives up just as its turn comes."""

from __future__ import annotations

import asyncio

import pytest

from attune_api.admission import Busy, Gate


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_first_come_first_served():
    async def scenario() -> list[int]:
        gate = Gate(slots=1, max_queue=10, timeout=5)
        order: list[int] = []
        await gate.acquire()

        async def waiter(i: int) -> None:
            await gate.acquire()
            order.append(i)
            gate.release()

        tasks = [asyncio.create_task(waiter(i)) for i in range(5)]
        await asyncio.sleep(0.01)
        gate.release()
        await asyncio.gather(*tasks)
        assert gate.free == 1 and not gate.waiters
        return order

    assert run(scenario()) == [0, 1, 2, 3, 4]


def test_a_full_queue_refuses_at_once_with_a_retry_delay():
    async def scenario() -> None:
        gate = Gate(slots=2, max_queue=1, timeout=5)
        await gate.acquire()
        await gate.acquire()
        queued = asyncio.create_task(gate.acquire())
        await asyncio.sleep(0.01)
        with pytest.raises(Busy) as refused:
            await gate.acquire()
        assert refused.value.reason == "queue_full" and refused.value.retry_after >= 1
        gate.release()
        await queued
        assert gate.free == 0 and not gate.waiters

    run(scenario())


def test_a_wait_longer_than_the_timeout_is_refused_and_leaves_no_trace():
    async def scenario() -> None:
        gate = Gate(slots=1, max_queue=10, timeout=0.05)
        await gate.acquire()
        with pytest.raises(Busy) as refused:
            await gate.acquire()
        assert refused.value.reason == "queue_timeout"
        assert not gate.waiters
        gate.release()
        assert gate.free == 1

    run(scenario())


def test_a_cancelled_waiter_leaves_the_queue_and_a_handed_over_place_is_passed_on():
    async def scenario() -> None:
        gate = Gate(slots=1, max_queue=10, timeout=5)
        await gate.acquire()
        first = asyncio.create_task(gate.acquire())
        second = asyncio.create_task(gate.acquire())
        await asyncio.sleep(0.01)
        gate.release()  # hands the place to `first`...
        first.cancel()  # ...which is cancelled before it runs: the place goes to `second`
        with pytest.raises(asyncio.CancelledError):
            await first
        await second
        assert gate.free == 0 and not gate.waiters
        gate.release()
        assert gate.free == 1

    run(scenario())


def test_a_patient_waiter_is_never_timed_out():
    async def scenario() -> None:
        gate = Gate(slots=1, max_queue=10, timeout=0.01)
        await gate.acquire()
        patient = asyncio.create_task(gate.acquire(patient=True))
        await asyncio.sleep(0.1)
        assert not patient.done()
        gate.release()
        await patient
        assert gate.free == 0 and not gate.waiters

    run(scenario())
