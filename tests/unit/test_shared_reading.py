"""SharedReading: many sends resumed at start share one liquidity reading a second."""

from __future__ import annotations

import asyncio

import pytest

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


async def test_an_old_reading_is_taken_again_and_a_failed_one_is_not_kept() -> None:
    values = iter([1, 2])
    fail = True

    async def read() -> int:
        nonlocal fail
        if fail:
            fail = False
            raise RuntimeError("lightningd busy")
        return next(values)

    shared = SharedReading(read, max_age=0.0)
    with pytest.raises(RuntimeError):
        await shared.get()
    assert await shared.get() == 1
    assert await shared.get() == 2  # max_age 0: every call reads
