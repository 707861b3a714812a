"""Swaps between federations on one gateway: every version pair, failures, crashes, conservation."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets
import time
from typing import Any

import pytest

from contrib.devfed import wallet_ln
from contrib.devfed.client import http_json
from contrib.devfed.server import RunningFederation
from contrib.devfed.wallet import Wallet
from fedimint_gw.crypto.threshold_elgamal import encrypt
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.lightning import bolt11
from fedimint_gw.services import context as context_module
from fedimint_gw.store import payments as pay_repo
from tests.e2e.conftest import Env, wait_until
from tests.e2e.helpers import Crash, claim_receive, default_fee


async def _balances(env: Env, users: list[Wallet]) -> tuple[int, int]:
    gateway = 0
    for fed in env.federations:
        client = env.gateway.federations.client(FederationId(fed.federation_id))
        gateway += (await client.balance()).value
    return gateway, sum(u.balance_msat() for u in users)


async def _receive(env: Env, fed: RunningFederation, user: Wallet, amount: int) -> wallet_ln.Receive:
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    if user.client.major == 1:
        return await wallet_ln.receive_v1(user, client.gateway_pubkey, amount, "swap target")
    return await wallet_ln.receive_v2(user, env.api_url, amount, "swap target")


async def _pair(env: Env, src_major: int, dst_major: int) -> tuple[RunningFederation, RunningFederation]:
    src = await env.federation(f"src{src_major}{dst_major}", (src_major,))
    dst = await env.federation(f"dst{src_major}{dst_major}", (dst_major,))
    for fed in (src, dst):
        await env.gateway.federations.connect(fed.invite_code)
    return src, dst


@pytest.mark.parametrize(("src_major", "dst_major"), [(1, 1), (1, 2), (2, 1), (2, 2)])
async def test_swap_every_version_pair_without_lightning(env: Env, src_major: int, dst_major: int) -> None:
    src, dst = await _pair(env, src_major, dst_major)
    await env.fund_gateway(dst, 300_000)
    sender = await env.wallet(src, "sender")
    receiver = await env.wallet(dst, "receiver")
    await sender.faucet(200_000)
    gw_before, users_before = await _balances(env, [sender, receiver])

    receive = await _receive(env, dst, receiver, 50_000)
    src_client = env.gateway.federations.client(FederationId(src.federation_id))
    result = await wallet_ln.pay(
        sender, receive.bolt11, env.api_url, src_client.gateway_pubkey, default_fee(50_000)
    )
    await env.settled(str(result["contract_id"]))
    assert hashlib.sha256(bytes.fromhex(str(result["preimage"]))).hexdigest() == receive.payment_hash
    assert env.node.pay_calls == []  # no Lightning payment was made
    claimed = await claim_receive(receiver, receive)
    assert claimed == (50_000 if dst_major == 1 else 50_000 - default_fee(50_000))

    gw_after, users_after = await _balances(env, [sender, receiver])
    earned = gw_after - gw_before
    assert earned == users_before - users_after  # conservation: what users paid, the gateway earned
    # the swap fee (+ the v2 receive fee)
    assert earned == default_fee(50_000) + (0 if dst_major == 1 else default_fee(50_000))

    rec = await pay_repo.get(env.gateway.db.conn, f"send:{result['contract_id']}")
    assert rec is not None and rec.kind is PaymentKind.SWAP and rec.state is PaymentState.SUCCEEDED
    assert rec.federation_id == src.federation_id and rec.target_federation_id == dst.federation_id
    listed = (await env.gateway.payments(None, None, 10, None))["payments"]
    assert any(p["kind"] == "swap" and p["target_federation_id"] == dst.federation_id for p in listed)


async def test_pair_fee_override_makes_migrations_free(env: Env) -> None:
    src, dst = await _pair(env, 1, 1)
    await env.fund_gateway(dst, 100_000)
    await env.gateway.set_fees(src.federation_id, 0, 0, dst.federation_id)
    sender, receiver = await env.wallet(src, "s"), await env.wallet(dst, "r")
    await sender.faucet(30_000)
    receive = await _receive(env, dst, receiver, 30_000)
    client = env.gateway.federations.client(FederationId(src.federation_id))
    result = await wallet_ln.pay(sender, receive.bolt11, env.api_url, client.gateway_pubkey, 0)
    await env.settled(str(result["contract_id"]))
    assert "preimage" in result and sender.balance_msat() == 0


async def test_insufficient_target_ecash_refunds_the_sender_at_once(env: Env) -> None:
    src, dst = await _pair(env, 2, 1)
    await env.fund_gateway(dst, 10_000)
    sender, receiver = await env.wallet(src, "s"), await env.wallet(dst, "r")
    await sender.faucet(100_000)
    receive = await _receive(env, dst, receiver, 50_000)
    client = env.gateway.federations.client(FederationId(src.federation_id))
    result = await wallet_ln.pay(
        sender, receive.bolt11, env.api_url, client.gateway_pubkey, default_fee(50_000)
    )
    await env.settled(str(result["contract_id"]))
    assert "preimage" not in result and sender.balance_msat() == 100_000
    rec = await pay_repo.get(env.gateway.db.conn, f"send:{result['contract_id']}")
    assert rec is not None and rec.state is PaymentState.REFUNDED and "10000 msat of ecash" in str(rec.error)
    assert env.node.pay_calls == []  # no fallback to a circular Lightning payment


async def test_target_below_threshold_refunds_the_sender(env: Env) -> None:
    src, dst = await _pair(env, 1, 2)
    await env.fund_gateway(dst, 100_000)
    sender, receiver = await env.wallet(src, "s"), await env.wallet(dst, "r")
    await sender.faucet(100_000)
    receive = await _receive(env, dst, receiver, 20_000)
    for peer in (0, 1):
        async with env.session.post(
            f"{dst.admin_url}/admin/guardians/{peer}/fault", json={"mode": "offline"}
        ) as r:
            r.raise_for_status()
    client = env.gateway.federations.client(FederationId(src.federation_id))
    paying = asyncio.create_task(
        wallet_ln.pay(sender, receive.bolt11, env.api_url, client.gateway_pubkey, default_fee(20_000))
    )

    async def abandoning() -> bool:  # B's funding is being made impossible: a conflicting reissue
        async with env.gateway.db.conn.execute(
            "SELECT COUNT(*) FROM ecash_operations WHERE kind = 'abandon_funding'"
        ) as cur:
            row = await cur.fetchone()
        return bool(row and row[0])

    await wait_until(abandoning)
    assert not paying.done()  # no refund while B cannot confirm that its funding never lands
    for peer in (0, 1):
        async with env.session.post(
            f"{dst.admin_url}/admin/guardians/{peer}/fault", json={"mode": "honest"}
        ) as r:
            r.raise_for_status()
    result = await paying
    await env.settled(str(result["contract_id"]))
    assert "preimage" not in result and sender.balance_msat() == 100_000
    dst_client = env.gateway.federations.client(FederationId(dst.federation_id))
    assert (await dst_client.balance()).value == 100_000  # the conflicting reissue gave the notes back


async def test_invalid_preimage_at_the_target_refunds_both_sides(env: Env) -> None:
    src, dst = await _pair(env, 2, 1)
    await env.fund_gateway(dst, 100_000)
    sender, receiver = await env.wallet(src, "s"), await env.wallet(dst, "r")
    await sender.faucet(100_000)
    invoice = await _offer_with_wrong_preimage(env, dst, receiver, 20_000)
    client = env.gateway.federations.client(FederationId(src.federation_id))
    result = await wallet_ln.pay(sender, invoice, env.api_url, client.gateway_pubkey, default_fee(20_000))
    await env.settled(str(result["contract_id"]))
    assert "preimage" not in result and sender.balance_msat() == 100_000
    dst_client = env.gateway.federations.client(FederationId(dst.federation_id))
    assert (await dst_client.balance()).value == 100_000


async def test_expired_target_offer_refunds_the_sender(env: Env) -> None:
    src, dst = await _pair(env, 1, 1)
    await env.fund_gateway(dst, 100_000)
    sender, receiver = await env.wallet(src, "s"), await env.wallet(dst, "r")
    await sender.faucet(100_000)
    receive = await _receive(env, dst, receiver, 20_000)
    env.clock_offset[0] = 7200  # the federations now see the offer (1 h) as expired
    client = env.gateway.federations.client(FederationId(src.federation_id))
    result = await wallet_ln.pay(
        sender, receive.bolt11, env.api_url, client.gateway_pubkey, default_fee(20_000)
    )
    await env.settled(str(result["contract_id"]))
    assert "preimage" not in result and sender.balance_msat() == 100_000


async def test_invoice_to_our_node_that_no_federation_expects_is_refused(env: Env) -> None:
    src = await env.federation("circ", (1,))
    await env.gateway.federations.connect(src.invite_code)
    sender = await env.wallet(src, "s")
    await sender.faucet(50_000)
    content = bolt11.InvoiceContent(
        currency="bcrt",
        amount_msat=10_000,
        timestamp=int(time.time()),
        payment_hash=secrets.token_bytes(32),
        payment_secret=secrets.token_bytes(32),
        description="to myself",
        features=bolt11.DEFAULT_FEATURES,
    )
    invoice = await env.node.sign_invoice(bolt11.encode_for_signinvoice(bolt11.encode_unsigned(content)))
    client = env.gateway.federations.client(FederationId(src.federation_id))
    result = await wallet_ln.pay(sender, invoice, env.api_url, client.gateway_pubkey, default_fee(10_000))
    await env.settled(str(result["contract_id"]))
    assert "preimage" not in result and sender.balance_msat() == 50_000
    assert env.node.pay_calls == []


@pytest.mark.parametrize("crash_after", [PaymentState.HTLC_HELD, PaymentState.FUNDED, PaymentState.CLAIMING])
async def test_crash_between_swap_steps_resumes(
    env: Env, monkeypatch: pytest.MonkeyPatch, crash_after: PaymentState
) -> None:
    src, dst = await _pair(env, 2, 1)
    await env.fund_gateway(dst, 100_000)
    sender, receiver = await env.wallet(src, "s"), await env.wallet(dst, "r")
    await sender.faucet(100_000)
    receive = await _receive(env, dst, receiver, 20_000)
    real_advance = context_module.ServiceContext.advance
    crashed: list[str] = []

    async def advance_then_crash(self: Any, rec: Any, state: PaymentState, **changes: Any) -> Any:
        new = await real_advance(self, rec, state, **changes)
        if rec.kind is PaymentKind.SWAP and state is crash_after and not crashed:
            crashed.append(rec.payment_id)
            raise Crash()
        return new

    monkeypatch.setattr(context_module.ServiceContext, "advance", advance_then_crash)
    if crash_after is PaymentState.HTLC_HELD:  # written by the send flow itself, not by advance()
        monkeypatch.setattr(
            "fedimint_gw.services.payments.swap.SwapService.drive", _crash_on_entry(crashed), raising=True
        )
    if crash_after is PaymentState.CLAIMING:  # written in one step with the receive it settles
        from fedimint_gw.services.payments.swap import SwapService

        real_known = SwapService._preimage_known

        async def known_then_crash(self: Any, rec: Any, preimage: str) -> Any:
            new = await real_known(self, rec, preimage)
            if not crashed:
                crashed.append(rec.payment_id)
                raise Crash()
            return new

        monkeypatch.setattr(SwapService, "_preimage_known", known_then_crash)
    client = env.gateway.federations.client(FederationId(src.federation_id))
    fee = default_fee(20_000)
    with contextlib.suppress(Exception):  # the gateway "died" mid-request; the wallet sees an error
        await wallet_ln.pay(sender, receive.bolt11, env.api_url, client.gateway_pubkey, fee)
    assert crashed, "the crash was not injected"
    monkeypatch.undo()
    await env.restart_gateway()
    payment_id = crashed[0]

    async def finished() -> bool:
        rec = await pay_repo.get(env.gateway.db.conn, payment_id)
        return rec is not None and rec.state.terminal

    await wait_until(finished)
    rec = await pay_repo.get(env.gateway.db.conn, payment_id)
    assert rec is not None and rec.state is PaymentState.SUCCEEDED
    assert await claim_receive(receiver, receive) == 20_000
    gw_src = await env.gateway.federations.client(FederationId(src.federation_id)).balance()
    gw_dst = await env.gateway.federations.client(FederationId(dst.federation_id)).balance()
    assert gw_src.value == 20_000 + fee and gw_dst.value == 80_000  # each step happened exactly once


def _crash_on_entry(crashed: list[str]) -> Any:
    async def drive(self: Any, rec: Any) -> Any:
        crashed.append(rec.payment_id)
        raise Crash()

    return drive


async def _offer_with_wrong_preimage(env: Env, fed: RunningFederation, user: Wallet, amount: int) -> str:
    """A v1 offer whose encrypted preimage does not hash to its payment hash, and its invoice."""
    from coincurve import PrivateKey

    from contrib.devfed.transactions import offer_context

    client = env.gateway.federations.client(FederationId(fed.federation_id))
    payment_hash = hashlib.sha256(secrets.token_bytes(32)).hexdigest()
    offer: dict[str, Any] = {
        "payment_hash": payment_hash,
        "amount_msat": amount,
        "claim_pubkey": PrivateKey().public_key.format().hex(),
        "expiry": int(time.time()) + 3600,
    }
    offer["encrypted_preimage"] = encrypt(
        user.config.ln_pubkey, secrets.token_bytes(32), offer_context(offer)
    ).to_dict()
    await http_json(env.session, "POST", f"{fed.guardian_urls[0]}/v1/offers", offer)
    gateways = await wallet_ln.v1_gateways(user)
    gw = next(g for g in gateways if g["gateway_pubkey"] == client.gateway_pubkey)
    hop = bolt11.RouteHop(
        pubkey=bytes.fromhex(str(gw["node_pubkey"])),
        short_channel_id=int(str(gw["scid"])),
        fee_base_msat=0,
        fee_proportional_millionths=0,
        cltv_expiry_delta=144,
    )
    content = bolt11.InvoiceContent(
        currency="bcrt",
        amount_msat=amount,
        timestamp=int(time.time()),
        payment_hash=bytes.fromhex(payment_hash),
        payment_secret=secrets.token_bytes(32),
        description="bad",
        features=bolt11.DEFAULT_FEATURES,
        route_hints=((hop,),),
    )
    return bolt11.sign_with_key(bolt11.encode_unsigned(content), PrivateKey())
