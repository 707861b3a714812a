"""Receives whose HTLC lightningd failed while the plugin was down are settled at the next start."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from contrib.devfed import wallet_ln
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.services import gateway as gateway_module
from fedimint_gw.services.events import LOSS_REPORTED
from fedimint_gw.services.payments import receive_recovery as recovery_module
from fedimint_gw.store import payments as pay_repo
from tests.e2e.conftest import Env, wait_until
from tests.e2e.helpers import Crash, crash_after_writing
from tests.e2e.test_operations import _with_events
from tests.support.fake_node import forward_payload


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
    real_accept = type(env.gateway._incoming)._accept  # type: ignore[union-attr]

    async def crash_after_accept(self: Any, *args: Any) -> Any:
        await real_accept(self, *args)
        raise Crash()

    if crash_after is PaymentState.HTLC_HELD:
        monkeypatch.setattr(type(env.gateway._incoming), "_accept", crash_after_accept)  # type: ignore[union-attr]
    else:
        crash_after_writing(monkeypatch, PaymentKind.RECEIVE, crash_after)
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


async def test_orphan_whose_failed_htlc_is_still_listed_at_start_is_settled_once_it_goes(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen in the crash matrix (lightningd v26.06.6, plugin killed at FUNDED): after the restart
    lightningd still listed the HTLC it had failed (removed only once the peer reconnected), so
    the one look after the grace skipped the receive, and it stayed `funded` forever with its
    loss never reported."""
    fed = await env.federation("orphan-late", (1,))
    info = await env.gateway.federations.connect(fed.invite_code)
    await env.fund_gateway(fed, 100_000)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "u")
    receive = await wallet_ln.receive_v1(user, client.gateway_pubkey, 10_000, "x")
    height = env.node.block_height
    crash_after_writing(monkeypatch, PaymentKind.RECEIVE, PaymentState.FUNDED)
    with contextlib.suppress(Crash):
        await env.htlc(
            *forward_payload(info["scid"], receive.payment_hash, 10_000, 20_000, height + 100, height)
        )
    monkeypatch.undo()
    monkeypatch.setattr(gateway_module, "RECONCILE_GRACE", 0.0)
    monkeypatch.setattr(recovery_module, "RECONCILE_EVERY", 0.05)
    env.node.held.add(("103x1x0", 0))  # still listed by lightningd after the restart, never replayed
    await env.restart_gateway()

    async def state() -> PaymentState:
        recs = await pay_repo.by_hash(env.gateway.db.conn, receive.payment_hash, PaymentKind.RECEIVE)
        return recs[0].state

    await asyncio.sleep(0.3)
    assert await state() is PaymentState.FUNDED  # listed: maybe a replay is coming
    env.node.held.clear()  # lightningd finished removing it
    await wait_until(lambda: _terminal(state), timeout=60)
    rec = (await pay_repo.by_hash(env.gateway.db.conn, receive.payment_hash, PaymentKind.RECEIVE))[0]
    assert rec.state is PaymentState.FAILED and "never received" in str(rec.error)
    assert rec.data["lost_msat"] == 10_000


async def _terminal(state: Any) -> bool:
    return bool((await state()).terminal)


async def test_receive_killed_between_succeeded_and_its_resolve_reports_the_loss(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seen in the crash matrix (receive:succeeded): the preimage was written SUCCEEDED, the
    plugin died before its `resolve` reached lightningd, lightningd failed the HTLC, the
    receiver claimed its contract, and the gateway said `succeeded`: a loss nobody reported."""
    fed = await env.federation("orphan-resolve", (1,))
    info = await env.gateway.federations.connect(fed.invite_code)
    await env.fund_gateway(fed, 100_000)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "u")
    receive = await wallet_ln.receive_v1(user, client.gateway_pubkey, 10_000, "x")
    height = env.node.block_height
    crash_after_writing(monkeypatch, PaymentKind.RECEIVE, PaymentState.SUCCEEDED)
    with contextlib.suppress(Crash):
        await env.htlc(
            *forward_payload(info["scid"], receive.payment_hash, 10_000, 20_000, height + 100, height)
        )
    monkeypatch.undo()
    monkeypatch.setattr(gateway_module, "RECONCILE_GRACE", 0.0)
    monkeypatch.setattr(recovery_module, "RECONCILE_EVERY", 0.05)
    env.node.held.clear()
    env.node.failed_htlcs.add(("103x1x0", 0))  # lightningd failed it: no channel credit
    events = await _with_events(env)  # a restart whose notifications are recorded

    async def reported() -> bool:
        recs = await pay_repo.by_hash(env.gateway.db.conn, receive.payment_hash, PaymentKind.RECEIVE)
        return recs[0].state is PaymentState.FAILED

    await wait_until(reported, timeout=60)
    rec = (await pay_repo.by_hash(env.gateway.db.conn, receive.payment_hash, PaymentKind.RECEIVE))[0]
    assert "never received" in str(rec.error) and rec.data["lost_msat"] == 10_000
    assert rec.preimage  # the preimage stays: the receiver's claim is what cost the gateway
    assert any(lvl == "error" and "never received" in m for lvl, m in env.logs)
    losses = events.of(LOSS_REPORTED)  # what the alerting and the loss metrics hang on
    assert len(losses) == 1 and losses[0]["lost_msat"] == 10_000 and losses[0]["kind"] == "receive"


async def _resolved_and_confirmed(env: Env, name: str) -> pay_repo.PaymentRecord:
    """A v1 receive whose HTLC the gateway answered `resolve`, once its follow-up marked it
    fulfilled; the record."""
    fed = await env.federation(name, (1,))
    info = await env.gateway.federations.connect(fed.invite_code)
    await env.fund_gateway(fed, 100_000)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "u")
    receive = await wallet_ln.receive_v1(user, client.gateway_pubkey, 10_000, "x")
    height = env.node.block_height
    answer = await env.htlc(
        *forward_payload(info["scid"], receive.payment_hash, 10_000, 20_000, height + 100, height)
    )
    assert answer["result"] == "resolve"

    async def confirmed() -> bool:
        recs = await pay_repo.by_hash(env.gateway.db.conn, receive.payment_hash, PaymentKind.RECEIVE)
        return recs[0].data.get("lightning") == "fulfilled"

    await wait_until(confirmed, timeout=30)
    rec = (await pay_repo.by_hash(env.gateway.db.conn, receive.payment_hash, PaymentKind.RECEIVE))[0]
    return rec


async def test_a_resolved_receive_is_confirmed_and_stays_succeeded(env: Env) -> None:
    """The same check on a receive whose `resolve` was applied: lightningd credited the channel."""
    rec = await _resolved_and_confirmed(env, "resolved")
    assert rec.state is PaymentState.SUCCEEDED and "lost_msat" not in rec.data


async def test_one_failed_look_is_not_enough_to_report_a_loss(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loss is recorded only when lightningd shows the HTLC removed without a credit twice, a
    round apart (the credit may be written just after the removal is listed)."""
    from fedimint_gw.lightning.node import HtlcFate

    monkeypatch.setattr(recovery_module, "RECONCILE_EVERY", 0.05)
    looks: list[HtlcFate] = []

    async def fate(scid: str, htlc_id: int, payment_hash: str, moves_from: int = 0) -> HtlcFate:
        looks.append(HtlcFate.FAILED if not looks else HtlcFate.FULFILLED)
        return looks[-1]

    monkeypatch.setattr(env.node, "incoming_htlc_fate", fate)
    rec = await _resolved_and_confirmed(env, "one-failed-look")
    assert looks == [HtlcFate.FAILED, HtlcFate.FULFILLED]
    assert rec.state is PaymentState.SUCCEEDED and "lost_msat" not in rec.data
