"""Receives whose HTLC lightningd failed while the plugin was down are settled at the next start."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from contrib.devfed import wallet_ln
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.services import context as context_module
from fedimint_gw.services import gateway as gateway_module
from fedimint_gw.store import payments as pay_repo
from tests.e2e.conftest import Env, wait_until
from tests.support.fake_node import forward_payload


class Crash(BaseException):
    """The plugin process dying right after a state was written."""


@pytest.mark.parametrize("crash_after", [PaymentState.HTLC_HELD, PaymentState.FUNDED])
async def test_orphaned_receive_is_settled_and_any_loss_reported(
    env: Env, monkeypatch: pytest.MonkeyPatch, crash_after: PaymentState
) -> None:
    fed = await env.federation("orphan", (1,))
    info = await env.gateway.federations.connect(fed.invite_code)
    await env.fund_gateway(fed, 100_000)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "u")
    receive = await wallet_ln.receive_v1(user, client.gateway_pubkey, 10_000, "x")
    height = env.node.block_height
    real_advance = context_module.ServiceContext.advance
    real_accept = type(env.gateway._incoming)._accept  # type: ignore[union-attr]

    async def crash_on_advance(self: Any, rec: Any, state: PaymentState, **changes: Any) -> Any:
        new = await real_advance(self, rec, state, **changes)
        if rec.kind is PaymentKind.RECEIVE and state is crash_after:
            raise Crash()
        return new

    async def crash_after_accept(self: Any, *args: Any) -> Any:
        await real_accept(self, *args)
        raise Crash()

    if crash_after is PaymentState.HTLC_HELD:
        monkeypatch.setattr(type(env.gateway._incoming), "_accept", crash_after_accept)  # type: ignore[union-attr]
    else:
        monkeypatch.setattr(context_module.ServiceContext, "advance", crash_on_advance)
    with contextlib.suppress(Crash):
        await env.htlc(
            *forward_payload(info["scid"], receive.payment_hash, 10_000, 20_000, height + 100, height)
        )
    monkeypatch.undo()
    monkeypatch.setattr(gateway_module, "RECONCILE_GRACE", 0.0)
    env.node.held.clear()  # lightningd failed the HTLC when the plugin died; it is not replayed
    await env.restart_gateway()

    async def settled() -> bool:
        recs = await pay_repo.by_hash(env.gateway.db.conn, receive.payment_hash, PaymentKind.RECEIVE)
        return bool(recs) and all(r.state.terminal for r in recs)

    await wait_until(settled, timeout=60)
    rec = (await pay_repo.by_hash(env.gateway.db.conn, receive.payment_hash, PaymentKind.RECEIVE))[0]
    assert rec.state is PaymentState.FAILED and "plugin was down" in str(rec.error)
    balance = (await env.gateway.federations.client(FederationId(fed.federation_id)).balance()).value
    if crash_after is PaymentState.HTLC_HELD:
        assert balance == 100_000  # nothing had been funded: nothing lost
    else:
        # Funded before the crash: the receiver's preimage was decrypted, the gateway lost the
        # amount, and says so loudly.
        assert balance == 90_000 and "never received" in str(rec.error)
        assert any(lvl == "error" and "never received" in m for lvl, m in env.logs)
