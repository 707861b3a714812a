"""A v2 receive taken by a swap that was never recorded (the plugin died between the two
writes) is given back at start, so the receive can still be paid."""

from __future__ import annotations

import hashlib

from contrib.devfed import wallet_ln
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.store import payments as pay_repo
from tests.e2e.conftest import Env
from tests.e2e.helpers import default_fee
from tests.e2e.test_swaps import _pair


async def test_a_receive_taken_by_an_unrecorded_swap_is_released_at_start(env: Env) -> None:
    src, dst = await _pair(env, 1, 2)
    await env.fund_gateway(dst, 300_000)
    sender = await env.wallet(src, "sender")
    receiver = await env.wallet(dst, "receiver")
    await sender.faucet(200_000)
    receive = await wallet_ln.receive_v2(receiver, env.api_url, 20_000, "orphan target")
    conn = env.gateway.db.conn
    [reg] = await pay_repo.by_hash(conn, receive.payment_hash, PaymentKind.RECEIVE)
    # What a crash right after the swap took the receive (`receive:htlc_held`) leaves behind.
    taken = reg.advance(PaymentState.HTLC_HELD, reg.updated_at, data={"swap": "send:" + "ab" * 32})
    async with env.gateway.db.transaction() as c:
        await pay_repo.save(c, taken)

    await env.restart_gateway()
    again = await pay_repo.get(env.gateway.db.conn, reg.payment_id)
    assert again is not None and again.state is PaymentState.REGISTERED

    # Another contract for the same invoice (the wallet gave up on the first) swaps it.
    key = env.gateway.federations.client(FederationId(src.federation_id)).gateway_pubkey
    result = await wallet_ln.pay(sender, receive.bolt11, env.api_url, key, default_fee(20_000))
    assert hashlib.sha256(bytes.fromhex(str(result["preimage"]))).hexdigest() == receive.payment_hash


async def test_a_receive_left_held_by_a_swap_that_knows_the_preimage_is_settled_at_start(env: Env) -> None:
    """The old code wrote the swap's CLAIMING and the receive's SUCCEEDED in two steps; killed
    between them (crash point `swap:claiming`), the receive stayed held for ever."""
    src, dst = await _pair(env, 1, 2)
    await env.fund_gateway(dst, 300_000)
    sender = await env.wallet(src, "sender")
    receiver = await env.wallet(dst, "receiver")
    await sender.faucet(200_000)
    receive = await wallet_ln.receive_v2(receiver, env.api_url, 20_000, "half-settled target")
    key = env.gateway.federations.client(FederationId(src.federation_id)).gateway_pubkey
    result = await wallet_ln.pay(sender, receive.bolt11, env.api_url, key, default_fee(20_000))
    await env.settled(str(result["contract_id"]))
    conn = env.gateway.db.conn
    [reg] = await pay_repo.by_hash(conn, receive.payment_hash, PaymentKind.RECEIVE)
    assert reg.state is PaymentState.SUCCEEDED
    # What the old code left after a crash between its two writes.
    held = reg.advance(PaymentState.HTLC_HELD, reg.updated_at, preimage=None)
    async with env.gateway.db.transaction() as c:
        await pay_repo.save(c, held)

    await env.restart_gateway()
    again = await pay_repo.get(env.gateway.db.conn, reg.payment_id)
    assert again is not None and again.state is PaymentState.SUCCEEDED
    assert again.preimage == result["preimage"]


async def test_a_receive_released_by_a_swap_and_then_held_by_an_htlc_is_left_to_the_htlc(env: Env) -> None:
    """Found in review: a release kept the swap's mark in the receive's data (`advance` merges
    data). When an HTLC later held the receive, the next start took it for an orphaned swap's
    and put it back to REGISTERED under the held HTLC (its replay then failed on every round)."""
    _src, dst = await _pair(env, 1, 2)
    receiver = await env.wallet(dst, "receiver")
    receive = await wallet_ln.receive_v2(receiver, env.api_url, 20_000, "released then held")
    conn = env.gateway.db.conn
    [reg] = await pay_repo.by_hash(conn, receive.payment_hash, PaymentKind.RECEIVE)
    taken = reg.advance(PaymentState.HTLC_HELD, reg.updated_at, data={"swap": "send:" + "ab" * 32})
    async with env.gateway.db.transaction() as c:
        await pay_repo.save(c, taken)
    await env.restart_gateway()  # the orphaned swap's receive is released
    again = await pay_repo.get(env.gateway.db.conn, reg.payment_id)
    assert again is not None and again.state is PaymentState.REGISTERED
    assert "swap" not in again.data
    # What the HTLC path writes when an HTLC takes the registration (receive._accept).
    held = again.advance(PaymentState.HTLC_HELD, again.updated_at, htlc_scid="100x1x0", htlc_id=7)
    async with env.gateway.db.transaction() as c:
        await pay_repo.save(c, held)
    await env.restart_gateway()
    after = await pay_repo.get(env.gateway.db.conn, reg.payment_id)
    assert after is not None and after.state is PaymentState.HTLC_HELD and after.htlc_scid == "100x1x0"
