"""A receive whose funding got no answer, then lost its HTLC to a plugin crash: the gateway
abandons the funding only by making it impossible, so it cannot land later and pay the
receiver for an HTLC that was failed (issue 14, finding 2, through the receive flow)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from contrib.devfed import wallet_ln
from contrib.devfed.errors import DevfedError
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.services import gateway as gateway_module
from fedimint_gw.store import payments as pay_repo
from tests.e2e.conftest import Env, wait_until
from tests.support.fake_node import forward_payload


async def test_a_funding_still_in_consensus_is_made_impossible_before_the_receive_fails(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed = await env.federation("inflight", (1,))
    info = await env.gateway.federations.connect(fed.invite_code)
    fid = FederationId(fed.federation_id)
    await env.fund_gateway(fed, 100_000)
    client = env.gateway.federations.client(fid)
    user = await env.wallet(fed, "u")
    receive = await wallet_ln.receive_v1(user, client.gateway_pubkey, 10_000, "x")

    async def fault(peer: int, **body: object) -> None:
        async with env.session.post(f"{fed.admin_url}/admin/guardians/{peer}/fault", json=body) as r:
            r.raise_for_status()

    # Guardian 0 takes the funding into consensus and holds it; the others never get it. Reads
    # still work, so the gateway accepts the HTLC and holds it while the funding goes unanswered.
    await fault(0, mode="dropping", defer=True)
    for peer in (1, 2, 3):
        await fault(peer, mode="dropping", discard=True)
    height = env.node.block_height
    hook = asyncio.create_task(
        env.htlc(*forward_payload(info["scid"], receive.payment_hash, 10_000, 20_000, height + 100, height))
    )

    async def funding_submitted() -> bool:
        return bool(fed.federation.guardians[0].deferred)

    await wait_until(funding_submitted)
    # The plugin dies holding the HTLC; lightningd fails it back and does not replay it.
    monkeypatch.setattr(gateway_module, "RECONCILE_GRACE", 0.0)
    env.node.held.clear()
    for peer in (1, 2, 3):
        await fault(peer, mode="honest")
    await env.restart_gateway()
    hook.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await hook

    async def settled() -> bool:
        recs = await pay_repo.by_hash(env.gateway.db.conn, receive.payment_hash, PaymentKind.RECEIVE)
        return bool(recs) and all(r.state.terminal for r in recs)

    await wait_until(settled, timeout=60)
    rec = (await pay_repo.by_hash(env.gateway.db.conn, receive.payment_hash, PaymentKind.RECEIVE))[0]
    assert rec.state is PaymentState.FAILED and "plugin was down" in str(rec.error)
    # Now what guardian 0 held lands: the funding must be refused, its notes being spent.
    async with env.session.post(f"{fed.admin_url}/admin/guardians/0/fault", json={"mode": "honest"}) as r:
        flushed = (await r.json())["flushed"]
    assert flushed and flushed[0].get("error", {}).get("name") == "double_spend"
    with pytest.raises(DevfedError, match="unknown_contract"):  # the receiver has nothing to claim
        fed.federation.sequencer.contract_body(str(rec.data["request"]["contract_id"]))
    assert (await env.gateway.federations.client(fid).balance()).value == 100_000  # nothing lost
    assert not any(lvl == "error" for lvl, _ in env.logs)
