"""SharedReading: many sends resumed at start share one liquidity reading a second."""

from __future__ import annotations

import asyncio

from fedimint_gw.services.payments.sharing import SharedReading


async def test_callers_at_once_share_one_reading() -> None:
    reads = 0

    async def read() -> int:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.01)
        return 7

    shared = SharedReading(read, max_age=60.0)
    assert await asyncio.gather(*(shared.get() for _ in range(20))) == [7] * 20
    assert reads == 1


async def test_an_old_reading_is_taken_again() -> None:
    values = iter([1, 2])

    async def read() -> int:
        return next(values)

    shared = SharedReading(read, max_age=0.0)
    assert await shared.get() == 1
    assert await shared.get() == 2  # max_age 0: every call reads


async def test_a_failed_reading_is_shared_too_then_taken_again() -> None:
    """Found in review: a failure was not kept, so callers waiting on the lock each read (and
    waited for a slow failure) in turn."""
    reads = 0

    async def read() -> int:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.01)
        if reads == 1:
            raise RuntimeError("lightningd busy")
        return 5

    shared = SharedReading(read, max_age=60.0)
    got = await asyncio.gather(*(shared.get() for _ in range(5)), return_exceptions=True)
    assert all(isinstance(g, RuntimeError) for g in got) and reads == 1
    fresh = SharedReading(read, max_age=0.0)
    assert await fresh.get() == 5
