"""Receive and send through the gateway services, against live devfed federations of both versions."""

from __future__ import annotations

import asyncio
import hashlib
import secrets

import pytest

from contrib.devfed import wallet_ln
from fedimint_gw.domain.ids import FederationId, ShortChannelId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.lightning import bolt11
from fedimint_gw.lightning.node import PaymentOutcome, PaymentStatus
from fedimint_gw.store import payments as pay_repo
from tests.e2e.conftest import Env, ecash_becomes, wait_until
from tests.e2e.helpers import claim_receive, external_invoice, route_hop
from tests.support.fake_node import final_payload, forward_payload


async def _gateway_ecash(env: Env, fed_id: str) -> int:
    return (await env.gateway.federations.client(FederationId(fed_id)).balance()).value


async def test_receive_v1_settles_with_the_offer_preimage(env: Env) -> None:
    fed = await env.federation("v1only", (1,))
    info = await env.gateway.federations.connect(fed.invite_code)
    assert info["api_version"].startswith("1.")
    await env.fund_gateway(fed, 200_000)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "alice")
    receive = await wallet_ln.receive_v1(user, client.gateway_pubkey, 50_000, "coffee")
    hop = route_hop(receive.bolt11)
    assert hop.pubkey.hex() == env.node.node_id
    assert str(ShortChannelId.from_int(hop.short_channel_id)) == info["scid"]
    fee = hop.fee_base_msat + 50_000 * hop.fee_proportional_millionths // 1_000_000
    height = env.node.block_height
    answer = await env.htlc(
        *forward_payload(info["scid"], receive.payment_hash, 50_000, 50_000 + fee, height + 100, height)
    )
    assert answer["result"] == "resolve"
    assert hashlib.sha256(bytes.fromhex(answer["payment_key"])).hexdigest() == receive.payment_hash
    await ecash_becomes(env, fed.federation_id, 150_000)  # the change notes come after the preimage
    assert await claim_receive(user, receive) == 50_000
    # A replay of the same HTLC (lightningd after a restart) gets the same answer, funds nothing.
    again = await env.htlc(
        *forward_payload(info["scid"], receive.payment_hash, 50_000, 50_000 + fee, height + 100, height)
    )
    assert again == answer
    await ecash_becomes(env, fed.federation_id, 150_000)


@pytest.mark.parametrize("problem", ["underpaid_fee", "cltv_too_close", "unknown_hash"])
async def test_receive_v1_refuses_bad_htlcs_without_funding(env: Env, problem: str) -> None:
    fed = await env.federation("v1bad", (1,))
    info = await env.gateway.federations.connect(fed.invite_code)
    await env.fund_gateway(fed, 100_000)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "bob")
    receive = await wallet_ln.receive_v1(user, client.gateway_pubkey, 10_000, "x")
    height = env.node.block_height
    amount, cltv, payment_hash = 10_000 + 10_000, height + 100, receive.payment_hash
    if problem == "underpaid_fee":
        amount = 10_000
    elif problem == "cltv_too_close":
        cltv = height + 3
    else:
        payment_hash = secrets.token_hex(32)
    answer = await env.htlc(*forward_payload(info["scid"], payment_hash, 10_000, amount, cltv, height))
    assert answer["result"] == "fail" and answer["failure_message"].startswith("400f")
    await ecash_becomes(env, fed.federation_id, 100_000)


async def test_receive_v2_through_a_gateway_invoice(env: Env) -> None:
    fed = await env.federation("v2only", (2,))
    info = await env.gateway.federations.connect(fed.invite_code)
    assert info["api_version"].startswith("2.") and info["registration"] == "vetted"
    await env.fund_gateway(fed, 200_000)
    user = await env.wallet(fed, "carol")
    receive = await wallet_ln.receive_v2(user, env.api_url, 40_000, "v2 coffee")
    inv = bolt11.decode(receive.bolt11)
    assert inv.payee.hex() == env.node.node_id and inv.amount_msat == 40_000
    assert not bolt11.has_feature(inv.features, bolt11.BASIC_MPP)
    height = env.node.block_height
    secret = (inv.payment_secret or b"").hex()
    # Wrong payment secret: not this registration's payment, passed on to lightningd; nothing funded.
    bad = await env.htlc(
        *final_payload(receive.payment_hash, "00" * 32, 40_000, 40_000, height + 50, height, 1)
    )
    assert bad["result"] == "continue"
    await ecash_becomes(env, fed.federation_id, 200_000)
    answer = await env.htlc(
        *final_payload(receive.payment_hash, secret, 40_000, 40_000, height + 50, height, 2)
    )
    assert answer["result"] == "resolve"
    assert hashlib.sha256(bytes.fromhex(answer["payment_key"])).hexdigest() == receive.payment_hash
    net = await claim_receive(user, receive)
    assert net < 40_000  # the receive fee stayed with the gateway
    await ecash_becomes(env, fed.federation_id, 200_000 - net)


@pytest.mark.parametrize("majors", [(1,), (2,)])
async def test_send_pays_the_invoice_and_claims_the_contract(env: Env, majors: tuple[int, ...]) -> None:
    fed = await env.federation(f"send{majors[0]}", majors)
    await env.gateway.federations.connect(fed.invite_code)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "dave")
    await user.faucet(100_000)
    preimage = secrets.token_bytes(32)
    payment_hash = env.node.add_payee(preimage)
    invoice = external_invoice(payment_hash, 30_000)
    fee = 2000 + 30_000 * 3000 // 1_000_000
    result = await wallet_ln.pay(user, invoice, env.api_url, client.gateway_pubkey, fee)
    await env.settled(str(result["contract_id"]))
    assert result["preimage"] == preimage.hex()
    assert user.balance_msat() == 100_000 - 30_000 - fee
    await ecash_becomes(env, fed.federation_id, 30_000 + fee)
    rec = await pay_repo.get(env.gateway.db.conn, f"send:{result['contract_id']}")
    assert rec is not None and rec.state is PaymentState.SUCCEEDED and rec.fee_msat == fee


@pytest.mark.parametrize("majors", [(1,), (2,)])
async def test_failed_send_refunds_the_user(env: Env, majors: tuple[int, ...]) -> None:
    fed = await env.federation(f"fail{majors[0]}", majors)
    await env.gateway.federations.connect(fed.invite_code)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "erin")
    await user.faucet(100_000)
    invoice = external_invoice(secrets.token_hex(32), 30_000)  # nobody knows the preimage
    fee = 2000 + 30_000 * 3000 // 1_000_000
    result = await wallet_ln.pay(user, invoice, env.api_url, client.gateway_pubkey, fee)
    await env.settled(str(result["contract_id"]))
    assert "preimage" not in result and result["refunded_msat"] == 30_000 + fee
    assert user.balance_msat() == 100_000
    await ecash_becomes(env, fed.federation_id, 0)


async def test_unknown_outcome_is_resolved_by_a_later_query(env: Env) -> None:
    fed = await env.federation("pending", (1,))
    await env.gateway.federations.connect(fed.invite_code)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "frank")
    await user.faucet(100_000)
    preimage = secrets.token_bytes(32)
    payment_hash = hashlib.sha256(preimage).hexdigest()
    # xpay's answer is lost; lightningd later reports the payment complete.
    env.node.script = lambda inv: PaymentOutcome(PaymentStatus.PENDING, reason="connection lost", attempts=1)
    env.node.sent[payment_hash] = PaymentOutcome(PaymentStatus.SUCCEEDED, preimage, attempts=1)
    invoice = external_invoice(payment_hash, 20_000)
    fee = 2000 + 20_000 * 3000 // 1_000_000
    result = await wallet_ln.pay(user, invoice, env.api_url, client.gateway_pubkey, fee)
    await env.settled(str(result["contract_id"]))
    assert result["preimage"] == preimage.hex()
    assert env.node.pay_calls == [payment_hash]  # paid once, then only asked


async def test_concurrent_receives_wait_for_ecash_held_by_each_other(env: Env) -> None:
    """One big note: every receive but the first finds it reserved, waits, and then succeeds."""
    import asyncio

    fed = await env.federation("busy", (1,))
    info = await env.gateway.federations.connect(fed.invite_code)
    await env.fund_gateway(fed, 131_072)  # a single 2^17 msat note
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "busy-user")
    receives = [await wallet_ln.receive_v1(user, client.gateway_pubkey, 10_000, f"r{i}") for i in range(6)]
    height = env.node.block_height
    answers = await asyncio.gather(
        *(
            env.htlc(*forward_payload(info["scid"], r.payment_hash, 10_000, 20_000, height + 100, height, i))
            for i, r in enumerate(receives)
        )
    )
    assert [a["result"] for a in answers] == ["resolve"] * 6
    await ecash_becomes(env, fed.federation_id, 131_072 - 60_000)


async def test_v2_send_with_a_forged_auth_is_refused(env: Env) -> None:
    from contrib.devfed.client import http_json
    from contrib.devfed.errors import DevfedError

    fed = await env.federation("auth", (2,))
    await env.gateway.federations.connect(fed.invite_code)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "grace")
    await user.faucet(100_000)
    preimage = secrets.token_bytes(32)
    invoice = external_invoice(env.node.add_payee(preimage), 10_000)
    inv = bolt11.decode(invoice)
    cid, contract, _key = await wallet_ln.fund_outgoing(
        user, inv.payment_hash.hex(), 20_000, client.gateway_pubkey
    )
    body = {
        "federation_id": fed.federation_id,
        "contract": contract,
        "contract_id": cid,
        "invoice": invoice,
        "outpoint": {"txid": "00" * 32, "out_idx": 0},
        "auth": "3045" + "00" * 68,
    }
    try:
        await http_json(env.session, "POST", f"{env.api_url}/v1/send_payment", body)
        raise AssertionError("a forged auth was accepted")
    except DevfedError as exc:
        assert "auth" in str(exc)
    assert env.node.pay_calls == []


async def test_a_repeated_send_request_pays_once(env: Env) -> None:
    from contrib.devfed.client import http_json

    fed = await env.federation("dup", (1,))
    await env.gateway.federations.connect(fed.invite_code)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "heidi")
    await user.faucet(100_000)
    preimage = secrets.token_bytes(32)
    invoice = external_invoice(env.node.add_payee(preimage), 10_000)
    cid, _contract, _key = await wallet_ln.fund_outgoing(
        user, bolt11.decode(invoice).payment_hash.hex(), 20_000, client.gateway_pubkey
    )
    body = {
        "federation_id": fed.federation_id,
        "contract_id": cid,
        "invoice": invoice,
        "preimage_auth": "00" * 32,
    }
    import asyncio

    answers = await asyncio.gather(
        *(http_json(env.session, "POST", f"{env.api_url}/v1/pay_invoice", body) for _ in range(3))
    )
    later = await http_json(env.session, "POST", f"{env.api_url}/v1/pay_invoice", body)
    assert all(isinstance(a, dict) and a["preimage"] == preimage.hex() for a in [*answers, later])
    assert len(env.node.pay_calls) == 1


async def test_receive_v1_expired_offer_is_refused(env: Env) -> None:
    fed = await env.federation("expired", (1,))
    info = await env.gateway.federations.connect(fed.invite_code)
    await env.fund_gateway(fed, 50_000)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "ivan")
    receive = await wallet_ln.receive_v1(user, client.gateway_pubkey, 10_000, "x", expiry_secs=60)
    env.clock_offset[0] = 120  # the federation now sees the offer as expired
    height = env.node.block_height
    answer = await env.htlc(
        *forward_payload(info["scid"], receive.payment_hash, 10_000, 20_000, height + 100, height)
    )
    assert answer["result"] == "fail"
    await ecash_becomes(env, fed.federation_id, 50_000)


async def test_receive_works_with_a_guardian_offline(env: Env) -> None:
    fed = await env.federation("oneoff", (2,))
    await env.gateway.federations.connect(fed.invite_code)
    await env.fund_gateway(fed, 100_000)
    user = await env.wallet(fed, "judy")
    receive = await wallet_ln.receive_v2(user, env.api_url, 30_000, "x")
    async with env.session.post(f"{fed.admin_url}/admin/guardians/3/fault", json={"mode": "offline"}) as r:
        r.raise_for_status()
    inv = bolt11.decode(receive.bolt11)
    height = env.node.block_height
    answer = await env.htlc(
        *final_payload(
            receive.payment_hash, (inv.payment_secret or b"").hex(), 30_000, 30_000, height + 50, height
        )
    )
    assert answer["result"] == "resolve"


async def test_receive_v1_invalid_preimage_fails_the_htlc_and_refunds_the_gateway(env: Env) -> None:
    from tests.e2e.test_swaps import _offer_with_wrong_preimage

    fed = await env.federation("badpre", (1,))
    info = await env.gateway.federations.connect(fed.invite_code)
    await env.fund_gateway(fed, 50_000)
    user = await env.wallet(fed, "mallory")
    invoice = await _offer_with_wrong_preimage(env, fed, user, 20_000)
    payment_hash = bolt11.decode(invoice).payment_hash.hex()
    height = env.node.block_height
    answer = await env.htlc(
        *forward_payload(info["scid"], payment_hash, 20_000, 30_000, height + 100, height)
    )
    assert answer["result"] == "fail"
    await ecash_becomes(env, fed.federation_id, 50_000)
    recs = await pay_repo.by_hash(env.gateway.db.conn, payment_hash, PaymentKind.RECEIVE)
    assert [r.state for r in recs] == [PaymentState.REFUNDED]


async def test_leaving_a_v1_federation_withdraws_the_registration(env: Env) -> None:
    from contrib.devfed.client import http_json
    from tests.e2e.conftest import wait_until

    fed = await env.federation("leave", (1,))
    await env.gateway.federations.connect(fed.invite_code)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    key = client.gateway_pubkey

    async def registered() -> bool:
        answer = await http_json(env.session, "GET", f"{fed.guardian_urls[0]}/v1/gateways")
        return isinstance(answer, dict) and any(g["gateway_pubkey"] == key for g in answer["gateways"])

    assert await registered()
    await env.gateway.leave(fed.federation_id, False)

    async def gone() -> bool:
        return not await registered()

    await wait_until(gone, timeout=10)


async def test_failed_parts_are_no_failure_while_this_process_xpay_may_still_send(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found in review: xpay's answer lost (PENDING) and lightningd listing only failed parts
    (an earlier refunded send's for this hash, past their retry window) made the send refund
    the user at once, while this xpay could still send a part that succeeds: paid and refunded."""
    from fedimint_gw.services.payments import send as send_module

    monkeypatch.setattr(send_module, "STATUS_POLL", 0.01)
    fed = await env.federation("lostxpay", (1,))
    await env.gateway.federations.connect(fed.invite_code)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "gina")
    await user.faucet(100_000)
    preimage = secrets.token_bytes(32)
    payment_hash = hashlib.sha256(preimage).hexdigest()
    env.node.script = lambda inv: PaymentOutcome(PaymentStatus.PENDING, reason="connection lost", attempts=1)
    earlier_send = PaymentOutcome(PaymentStatus.FAILED, reason="every attempt failed", attempts=2)
    env.node.sent[payment_hash] = earlier_send
    asked = 0
    status = env.node.payment_status

    async def counted(h: str, xpay_gone: bool = False) -> PaymentOutcome:
        nonlocal asked
        asked += 1
        return await status(h, xpay_gone)

    monkeypatch.setattr(env.node, "payment_status", counted)
    invoice = external_invoice(payment_hash, 20_000)
    fee = 2000 + 20_000 * 3000 // 1_000_000
    paying = asyncio.create_task(wallet_ln.pay(user, invoice, env.api_url, client.gateway_pubkey, fee))

    async def asked_often() -> bool:
        return asked >= 20

    await wait_until(asked_often)
    [rec] = await pay_repo.by_hash(env.gateway.db.conn, payment_hash, PaymentKind.SEND)
    assert rec.state is PaymentState.PAYING  # not refunded while this xpay may still send
    env.node.sent[payment_hash] = PaymentOutcome(PaymentStatus.SUCCEEDED, preimage, attempts=3)
    result = await paying
    await env.settled(str(result["contract_id"]))
    assert result["preimage"] == preimage.hex()
    assert env.node.pay_calls == [payment_hash]  # paid once, then only asked
