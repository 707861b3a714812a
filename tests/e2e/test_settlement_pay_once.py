"""A settlement's Lightning payment whose outcome the gateway did not see is never paid again
while the xpay call may still be running (money rule 6: one payment per payment hash)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from fedimint_gw.domain.amount import Msat
from fedimint_gw.lightning import bolt11
from fedimint_gw.lightning.node import PaymentOutcome, PaymentStatus
from fedimint_gw.peer.errors import PeerUnreachable
from fedimint_gw.services.peering import settlement
from tests.e2e.conftest import Env, wait_until
from tests.e2e.test_peers import _balance, _in_debt


async def test_a_settlement_payment_lost_in_flight_is_not_paid_twice(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """xpay's answer is lost (lightningd's socket dropped) while xpay goes on: it has sent no
    part yet when the settlement next asks lightningd. The old code took "no part" as "never
    paid" and called xpay again for the same invoice."""
    monkeypatch.setattr(settlement, "STATUS_PAUSE", 0.05)
    await _in_debt(env, env_b, 40_000)
    node = env.node
    loop = asyncio.get_running_loop()

    def lost_answer(inv: bolt11.Invoice) -> PaymentOutcome:
        h = inv.payment_hash.hex()
        done = PaymentOutcome(PaymentStatus.SUCCEEDED, node.payees[h], Msat(inv.amount_msat or 0), attempts=1)
        loop.call_later(0.5, node.sent.__setitem__, h, done)  # xpay's part lands a little later
        return PaymentOutcome(PaymentStatus.PENDING, reason="lost contact with lightningd")

    node.script = lost_answer
    settled = await env.gateway.peer_settle(env_b.node.node_id, None)
    assert settled["state"] == "done" and await _balance(env, env_b) == 0
    # The forward went over the peer link: every xpay call was the settlement's, and only one.
    assert len(node.pay_calls) == 1, node.pay_calls


async def test_a_failed_part_while_the_lost_xpay_retries_is_not_taken_for_a_failure(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """xpay's answer is lost while xpay goes on; its first part failed and it is about to try
    another route. lightningd then shows only failed parts. Counting that as "failed" and paying
    again (as a repay after a failure does) would pay the invoice twice."""
    monkeypatch.setattr(settlement, "STATUS_PAUSE", 0.05)
    monkeypatch.setattr(settlement, "REPAY_PAUSE", 0.05)
    await _in_debt(env, env_b, 40_000)
    node = env.node
    loop = asyncio.get_running_loop()

    def lost_answer(inv: bolt11.Invoice) -> PaymentOutcome:
        h = inv.payment_hash.hex()
        node.sent[h] = PaymentOutcome(PaymentStatus.FAILED, reason="temporary_channel_failure", attempts=1)
        done = PaymentOutcome(PaymentStatus.SUCCEEDED, node.payees[h], Msat(inv.amount_msat or 0), attempts=2)
        loop.call_later(1.0, node.sent.__setitem__, h, done)  # the second route succeeds
        return PaymentOutcome(PaymentStatus.PENDING, reason="lost contact with lightningd")

    node.script = lost_answer
    settled = await env.gateway.peer_settle(env_b.node.node_id, None)
    assert settled["state"] == "done" and await _balance(env, env_b) == 0
    assert len(node.pay_calls) == 1, node.pay_calls


async def test_a_settlement_payment_that_fails_once_is_paid_again(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A settlement resumed right after a restart pays before the channels are back and fails
    (seen in the regtest crash matrix). No part is in flight after a failed xpay, so paying
    again is safe: the old code gave the settlement up at once."""
    monkeypatch.setattr(settlement, "REPAY_PAUSE", 0.05)
    await _in_debt(env, env_b, 40_000)
    node = env.node
    failures: list[str] = []

    def fails_once(inv: bolt11.Invoice) -> PaymentOutcome:
        h = inv.payment_hash.hex()
        if not failures:
            failures.append(h)
            return PaymentOutcome(PaymentStatus.FAILED, reason="all channels disabled", attempts=1)
        return PaymentOutcome(PaymentStatus.SUCCEEDED, node.payees[h], Msat(inv.amount_msat or 0), attempts=1)

    node.script = fails_once
    settled = await env.gateway.peer_settle(env_b.node.node_id, None)
    assert settled["state"] == "done" and await _balance(env, env_b) == 0
    assert node.pay_calls == [failures[0], failures[0]]  # one failed payment, one that succeeded


async def test_a_paid_settlement_the_creditor_did_not_hear_of_is_told_again_later(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B is down when A reports its settlement paid: A's run gives up with the settlement `paid`
    (A's ledger moved, B's not). The old code took it up again only at A's next start or the
    next settle command; now a background round tells B once it is back."""
    monkeypatch.setattr(settlement, "STATUS_PAUSE", 0.01)
    monkeypatch.setattr(settlement, "RESUME_INTERVAL", 0.2)
    await _in_debt(env, env_b, 40_000)
    settle = env.gateway._settle
    assert settle is not None and settle._resumer is not None
    settle._resumer.cancel()  # the round started at start sleeps the real interval
    settle._resumer = asyncio.create_task(settle._resume_forever())
    client = env.gateway._peers.client  # type: ignore[union-attr]
    real_call = client.call
    down = [True]

    async def call(link: Any, message: str, *args: Any) -> Any:
        if message == "settled" and down[0]:
            raise PeerUnreachable("B is restarting")
        return await real_call(link, message, *args)

    monkeypatch.setattr(client, "call", call)
    settled = await env.gateway.peer_settle(env_b.node.node_id, None)
    assert settled["state"] == "paid" and await _balance(env, env_b) == 0
    assert await _balance(env_b, env) == 40_000  # B has not heard of it yet
    down[0] = False

    async def recorded() -> bool:
        return await _balance(env_b, env) == 0

    await wait_until(recorded, timeout=10)
    assert len(env.node.pay_calls) == 1  # told again, never paid again
