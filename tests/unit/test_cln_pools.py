"""ClnNode: long RPC calls (xpay) never starve the short ones (getinfo) (issue 15, finding 5)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from fedimint_gw.domain.amount import Msat
from fedimint_gw.lightning import cln
from fedimint_gw.lightning.cln import ClnNode
from fedimint_gw.lightning.node import PaymentStatus

STUCK_PAYMENTS = 40  # more than any default thread pool (at most 32 workers)


class _StuckRpc:
    """Stands in for pyln's LightningRpc: xpay blocks until released, getinfo answers at once."""

    release = threading.Event()
    started = 0
    lock = threading.Lock()

    def __init__(self, path: str) -> None:
        self.path = path

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "xpay":
            with _StuckRpc.lock:
                _StuckRpc.started += 1
            _StuckRpc.release.wait(30)
            return {"payment_preimage": "11" * 32, "amount_sent_msat": 1000}
        if method == "getinfo":
            return {"id": "02" + "ab" * 32, "network": "regtest", "blockheight": 101}
        raise AssertionError(f"unexpected call {method}")


async def test_getinfo_answers_while_many_payments_are_stuck(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cln, "LightningRpc", _StuckRpc)
    _StuckRpc.release.clear()
    node = ClnNode("/nonexistent/lightning-rpc")
    payments = [asyncio.create_task(node.pay("lnbcrt1", Msat(10), 100)) for _ in range(STUCK_PAYMENTS)]
    try:
        while _StuckRpc.started == 0:  # at least one payment is in lightningd
            await asyncio.sleep(0.01)
        info = await asyncio.wait_for(node.info(), timeout=20)
        assert info.block_height == 101
        assert not any(p.done() for p in payments)  # they were all still stuck meanwhile
    finally:
        _StuckRpc.release.set()
    outcomes = await asyncio.gather(*payments)
    assert {o.status for o in outcomes} == {PaymentStatus.SUCCEEDED}
