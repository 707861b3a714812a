"""A send whose plugin died right after it wrote that xpay was being called (crash matrix
point `send:paying:xpay`)."""

from __future__ import annotations

import contextlib
import secrets
from typing import Any

import pytest

from contrib.devfed import wallet_ln
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentState
from fedimint_gw.store import payments as pay_repo
from tests.e2e.conftest import Env, wait_until
from tests.e2e.helpers import Crash, external_invoice
from tests.support.fake_node import FakeNode


async def test_send_whose_xpay_died_with_lightningd_is_paid_at_the_next_start(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old code waited out xpay's retry window (120 s) after the restart, though the xpay
    it had called died with the old lightningd and sent nothing, then refunded the user. Now it
    pays at once: lightningd lists no part, and no xpay of the old process can still send one."""
    fed = await env.federation("xpaydied", (1,))
    await env.gateway.federations.connect(fed.invite_code)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "gina")
    await user.faucet(100_000)
    preimage = secrets.token_bytes(32)
    payment_hash = env.node.add_payee(preimage)
    invoice = external_invoice(payment_hash, 30_000)
    fee = 2000 + 30_000 * 3000 // 1_000_000
    cid, _contract, _key = await wallet_ln.fund_outgoing(
        user, payment_hash, 30_000 + fee, client.gateway_pubkey
    )

    async def dies(self: FakeNode, *args: Any) -> Any:
        raise Crash()

    monkeypatch.setattr(FakeNode, "pay", dies)
    outgoing = env.gateway._outgoing  # type: ignore[attr-defined]
    with contextlib.suppress(Crash):
        await outgoing.send(fed.federation_id, cid, invoice)
    monkeypatch.undo()
    rec = await pay_repo.get(env.gateway.db.conn, f"send:{cid}")
    assert rec is not None and rec.state is PaymentState.PAYING and rec.data["step"] == "xpay"
    assert env.node.pay_calls == []  # nothing was sent
    await env.restart_gateway()

    async def paid() -> bool:
        rec = await pay_repo.get(env.gateway.db.conn, f"send:{cid}")
        return rec is not None and rec.state is PaymentState.SUCCEEDED

    await wait_until(paid, timeout=20)
    assert env.node.pay_calls == [payment_hash]  # paid once
    assert user.balance_msat() == 100_000 - 30_000 - fee
