"""A send cut short before its payment started is resumed at the next start, and waits for
lightningd's channels to come back before it pays (found by the Fedimint crash matrix at
`send:paying` in lightningd: the resumed xpay ran before the peer reconnected, found no route,
and the user was refunded for nothing)."""

from __future__ import annotations

import contextlib
import secrets
from typing import Any

import pytest

from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentState
from fedimint_gw.services.payments import send as send_module
from fedimint_gw.store import payments as pay_repo
from tests.e2e.conftest import Env, wait_until
from tests.e2e.helpers import Crash
from tests.e2e.test_fedimint_ln import fm, invoice_for, joined, outgoing


async def test_a_resumed_send_waits_for_the_channels_before_paying(
    env: Env, fm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    await joined(env, fm, 0)
    preimage = secrets.token_bytes(32)
    payment_hash = env.node.add_payee(preimage)
    contract_id = await outgoing(env, fm, bytes.fromhex(payment_hash), 12_030, 100 + 500)

    async def crash(self: Any, rec: Any, answer: Any = None) -> Any:
        raise Crash()

    monkeypatch.setattr(send_module.OutgoingService, "drive", crash)
    with contextlib.suppress(Crash):
        await env.gateway._outgoing.send(  # type: ignore[union-attr]
            fm.federation_id.hex, contract_id, invoice_for(bytes.fromhex(payment_hash), 10_000)
        )
    monkeypatch.undo()
    rec = await pay_repo.get(env.gateway.db.conn, f"send:{contract_id}")
    assert rec is not None and rec.state is PaymentState.PAYING and "attempted_at" not in rec.data
    env.node.spendable_msat = 0  # lightningd just started: its peers are not reconnected yet
    await env.restart_gateway()
    await wait_until(lambda: any("waiting for lightningd's channels" in m for _, m in env.logs))
    env.node.spendable_msat = 10_000_000
    await env.settled(contract_id)
    rec = await pay_repo.get(env.gateway.db.conn, f"send:{contract_id}")
    assert rec is not None and rec.state is PaymentState.SUCCEEDED, rec
    assert env.node.pay_calls.count(payment_hash) == 1
    client = env.gateway.federations.client(FederationId(fm.federation_id.hex))
    assert (await client.balance()).value == 12_030
