"""Issue 14 (money safety): each test here failed on the code before its fix."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

import pytest
from coincurve import PrivateKey

from contrib.devfed import wallet_ln
from contrib.devfed.codec import sign
from contrib.devfed.contracts import SEND_AUTH_PURPOSE
from contrib.devfed.wallet import Wallet
from fedimint_gw.clock import SystemClock
from fedimint_gw.config import build_config
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.errors import InvalidInput
from fedimint_gw.lightning import bolt11
from fedimint_gw.services.gateway import Gateway
from fedimint_gw.store import payments as pay_repo
from tests.e2e.conftest import Env
from tests.support.fake_node import FakeNode, final_payload


async def test_the_gateway_refuses_to_start_unless_xpay_waits_for_every_part(tmp_path: Path) -> None:
    config = build_config(
        {"fedimint-gw-db": str(tmp_path / "gw.sqlite3"), "fedimint-gw-api-bind": "off"},
        {"lightning-dir": str(tmp_path), "network": "regtest"},
    )
    gateway = Gateway(config, FakeNode(slow_mode=False), SystemClock(), lambda m, lvl: None)
    with pytest.raises(InvalidInput, match="xpay-slow-mode=true"):
        await gateway.start()
    await gateway.stop()
    assert not (tmp_path / "gw.sqlite3").exists()  # refused before anything was opened


def _external_invoice(payment_hash: str, amount_msat: int) -> str:
    content = bolt11.InvoiceContent(
        currency="bcrt",
        amount_msat=amount_msat,
        timestamp=int(time.time()),
        payment_hash=bytes.fromhex(payment_hash),
        payment_secret=secrets.token_bytes(32),
        description="external",
        features=bolt11.DEFAULT_FEATURES,
    )
    return bolt11.sign_with_key(bolt11.encode_unsigned(content), PrivateKey())


async def _v2_send_body(
    env: Env, user: Wallet, fed_id: str, invoice: str, amount: int
) -> tuple[str, dict[str, object]]:
    """A funded v2 outgoing contract for `invoice` and the owner's signed send request."""
    gateway_key = env.gateway.federations.client(FederationId(fed_id)).gateway_pubkey
    inv = bolt11.decode(invoice)
    cid, contract, refund_key = await wallet_ln.fund_outgoing(
        user, inv.payment_hash.hex(), amount, gateway_key
    )
    return cid, {
        "federation_id": fed_id,
        "contract": contract,
        "contract_id": cid,
        "invoice": invoice,
        "auth": sign(refund_key, SEND_AUTH_PURPOSE, {"contract_id": cid, "invoice": invoice}),
    }


async def test_two_contracts_for_one_hash_sent_at_once_pay_once_and_refund_the_other(env: Env) -> None:
    """Finding 6: both passed the 'already being paid' check; the invoice was paid once and both
    contracts claimed, so the second user paid for nothing."""
    fed = await env.federation("samehash", (2,))
    await env.gateway.federations.connect(fed.invite_code)
    alice, bob = await env.wallet(fed, "alice"), await env.wallet(fed, "bob")
    await alice.faucet(100_000)
    await bob.faucet(100_000)
    preimage = secrets.token_bytes(32)
    invoice = _external_invoice(env.node.add_payee(preimage), 10_000)
    cid_a, body_a = await _v2_send_body(env, alice, fed.federation_id, invoice, 20_000)
    cid_b, body_b = await _v2_send_body(env, bob, fed.federation_id, invoice, 20_000)
    answers = await asyncio.gather(
        env.gateway.public.send_payment(body_a),
        env.gateway.public.send_payment(body_b),
        return_exceptions=True,
    )
    await env.settled(cid_a)
    await env.settled(cid_b)
    states = sorted(
        [
            (await pay_repo.get(env.gateway.db.conn, f"send:{cid}")).state.value  # type: ignore[union-attr]
            for cid in (cid_a, cid_b)
        ]
    )
    assert states == ["refunded", "succeeded"], answers
    assert len(env.node.pay_calls) == 1


async def test_two_htlcs_for_one_v2_registration_at_once_are_not_both_resolved(env: Env) -> None:
    """Finding 15: both HTLCs took the registration and were resolved against one funding, so
    the payer paid twice."""
    fed = await env.federation("v2twice", (2,))
    await env.gateway.federations.connect(fed.invite_code)
    await env.fund_gateway(fed, 200_000)
    user = await env.wallet(fed, "carol")
    receive = await wallet_ln.receive_v2(user, env.api_url, 40_000, "once")
    inv = bolt11.decode(receive.bolt11)
    secret = (inv.payment_secret or b"").hex()
    height = env.node.block_height
    answers = await asyncio.gather(
        *(
            env.htlc(*final_payload(receive.payment_hash, secret, 40_000, 40_000, height + 50, height, i))
            for i in (1, 2)
        )
    )
    assert sorted(a["result"] for a in answers) == ["fail", "resolve"]
    funded = [
        r
        for r in await pay_repo.by_hash(env.gateway.db.conn, receive.payment_hash, PaymentKind.RECEIVE)
        if r.state is PaymentState.SUCCEEDED
    ]
    assert len(funded) == 1
