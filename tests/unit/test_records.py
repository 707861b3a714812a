from __future__ import annotations

from pathlib import Path

import pytest

from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.errors import InvalidInput
from fedimint_gw.services.records import Records
from fedimint_gw.store import payments as repo
from fedimint_gw.store.db import Database


async def _db_with_payments(tmp_path: Path, n: int) -> Database:
    db = await Database.open(str(tmp_path / "gw.db"))
    async with db.transaction() as conn:
        for i in range(n):  # all in the same second, as a busy gateway writes them
            state = PaymentState.SUCCEEDED if i % 2 else PaymentState.FAILED
            await repo.save(
                conn,
                repo.PaymentRecord(
                    f"p{i}",
                    PaymentKind.SEND,
                    state,
                    f"{i:064x}",
                    1000 + i,
                    100,
                    100,
                    fee_msat=i,
                    data={"elapsed_ms": 10 * i},
                ),
            )
    return db


async def test_paging_returns_every_payment_once_even_within_one_second(tmp_path: Path) -> None:
    db = await _db_with_payments(tmp_path, 7)
    records, seen, before = Records(db), [], None
    while True:
        page = await records.payments(None, None, 3, before)
        seen += [p["payment_id"] for p in page["payments"]]
        before = page.get("next_before")
        if before is None:
            break
    assert seen == [f"p{i}" for i in range(6, -1, -1)]
    await db.close()


async def test_summary_counts_fees_and_latency(tmp_path: Path) -> None:
    db = await _db_with_payments(tmp_path, 4)
    summary = (await Records(db).summary(None, None, now=200))["kinds"]["send"]
    assert (summary["count"], summary["succeeded"], summary["failed"]) == (4, 2, 2)
    assert summary["fees_earned_msat"] == 1 + 3 and summary["volume_msat"] == 1001 + 1003
    assert summary["success_rate"] == 0.5 and summary["latency_ms_p50"] in (10, 30)
    with pytest.raises(InvalidInput):
        await Records(db).payments(None, "nonsense", 10, None)
    await db.close()
