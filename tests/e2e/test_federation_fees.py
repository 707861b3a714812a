"""What the federations took, recorded next to the fee charged (devfed: a flat transaction fee on
every transaction the gateway makes): sends record their claim's, swaps their funding's and
claim's, receives their funding's; summary and export show the margin; a receive whose fee does
not cover the take is logged as a loss, and `fedimint-setfees` warns about fees that low.
The Fedimint (per-note mint fee) receive is in test_fedimint_mint_fee_accounting.py."""

from __future__ import annotations

import hashlib
import secrets

import pytest

from contrib.devfed import wallet_ln
from contrib.devfed.server import RunningFederation
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.lightning import bolt11
from tests.e2e.conftest import Env, ecash_becomes
from tests.e2e.helpers import default_fee, external_invoice, route_hop
from tests.support.fake_node import forward_payload

TX_FEE = 10  # devfed's transaction fee in these federations (msat)


async def _only(env: Env, kind: str) -> dict[str, object]:
    (rec,) = [p for p in (await env.gateway.payments(None, None, 50, None))["payments"] if p["kind"] == kind]
    return rec


async def _fund(env: Env, fed: RunningFederation, amount: int) -> None:
    """Hand the gateway `amount` of ecash (+ the fee of its reissue: it holds exactly `amount`)."""
    w = await env.wallet(fed, f"funder-{fed.federation_id[:6]}")
    await w.faucet(amount + 2 * TX_FEE)
    notes = await w.send_ecash(amount + TX_FEE)
    await env.gateway.federations.client(FederationId(fed.federation_id)).receive_ecash(notes)


async def _ecash(env: Env, fed_id: str) -> int:
    return (await env.gateway.federations.client(FederationId(fed_id)).balance()).value


@pytest.mark.parametrize("major", [1, 2])
async def test_a_send_records_what_its_claim_cost(env: Env, major: int) -> None:
    fed = await env.federation(f"send-fee{major}", (major,), fee=TX_FEE)
    await env.gateway.federations.connect(fed.invite_code)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "payer")
    await user.faucet(100_000)
    payment_hash = env.node.add_payee(secrets.token_bytes(32))
    fee = default_fee(30_000)
    result = await wallet_ln.pay(
        user, external_invoice(payment_hash, 30_000), env.api_url, client.gateway_pubkey, fee
    )
    await env.settled(str(result["contract_id"]))
    await ecash_becomes(env, fed.federation_id, 30_000 + fee - TX_FEE)  # the claim paid the tx fee
    rec = await _only(env, "send")
    assert (rec["state"], rec["fee_msat"]) == ("succeeded", fee)
    assert rec["federation_fee_msat"] == TX_FEE and rec["margin_msat"] == fee - TX_FEE
    totals = (await env.gateway.summary(None, None))["kinds"]["send"]
    assert (totals["fees_earned_msat"], totals["federation_fees_msat"]) == (fee, TX_FEE)
    assert totals["margin_msat"] == fee - TX_FEE
    export = await env.gateway.export(None, None, "csv")
    assert export["totals"]["send"]["margin_msat"] == fee - TX_FEE
    header, row = export["csv"].splitlines()
    assert dict(zip(header.split(","), row.split(","), strict=True))["federation_fee_msat"] == str(TX_FEE)


async def test_a_swap_records_its_funding_and_its_claim(env: Env) -> None:
    src = await env.federation("swap-fee-src", (1,), fee=TX_FEE)
    dst = await env.federation("swap-fee-dst", (1,), fee=TX_FEE)
    for fed in (src, dst):
        await env.gateway.federations.connect(fed.invite_code)
    await _fund(env, dst, 300_000)
    sender = await env.wallet(src, "sender")
    receiver = await env.wallet(dst, "receiver")
    await sender.faucet(200_000)
    dst_client = env.gateway.federations.client(FederationId(dst.federation_id))
    src_client = env.gateway.federations.client(FederationId(src.federation_id))
    before = await _ecash(env, src.federation_id) + await _ecash(env, dst.federation_id)
    receive = await wallet_ln.receive_v1(receiver, dst_client.gateway_pubkey, 50_000, "swap")
    fee = default_fee(50_000)
    result = await wallet_ln.pay(sender, receive.bolt11, env.api_url, src_client.gateway_pubkey, fee)
    await env.settled(str(result["contract_id"]))
    await ecash_becomes(env, dst.federation_id, 300_000 - 50_000 - TX_FEE)  # funding: one tx fee
    after = await _ecash(env, src.federation_id) + await _ecash(env, dst.federation_id)
    rec = await _only(env, "swap")
    assert (rec["state"], rec["fee_msat"]) == ("succeeded", fee)
    # B's funding and A's claim each paid one transaction fee: the margin is what the gateway gained
    assert rec["federation_fee_msat"] == 2 * TX_FEE
    assert rec["margin_msat"] == after - before == fee - 2 * TX_FEE


async def _receive_v1(env: Env, amount: int, fees: tuple[int, int]) -> tuple[dict[str, object], int]:
    fed = await env.federation("recv-fee", (1,), fee=TX_FEE)
    info = await env.gateway.federations.connect(fed.invite_code)
    answer = await env.gateway.set_fees(fed.federation_id, fees[0], fees[1])
    await _fund(env, fed, 200_000)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "alice")
    receive = await wallet_ln.receive_v1(user, client.gateway_pubkey, amount, "coffee")
    hop = route_hop(receive.bolt11)
    fee = hop.fee_base_msat + amount * hop.fee_proportional_millionths // 1_000_000
    height = env.node.block_height
    result = await env.htlc(
        *forward_payload(info["scid"], receive.payment_hash, amount, amount + fee, height + 100, height)
    )
    assert result["result"] == "resolve"
    assert hashlib.sha256(bytes.fromhex(result["payment_key"])).hexdigest() == receive.payment_hash
    await ecash_becomes(env, fed.federation_id, 200_000 - amount - TX_FEE)
    return answer, fee


async def test_a_receive_records_its_funding_fee(env: Env) -> None:
    answer, fee = await _receive_v1(env, 50_000, (2000, 3000))
    assert "warning" not in answer
    rec = await _only(env, "receive")
    assert (rec["state"], rec["fee_msat"]) == ("succeeded", fee)
    assert rec["federation_fee_msat"] == TX_FEE and rec["margin_msat"] == fee - TX_FEE
    assert not [m for lvl, m in env.logs if lvl == "warn" and "a loss of" in m]


async def test_a_receive_whose_fee_is_below_the_federations_take_is_a_logged_loss(env: Env) -> None:
    answer, fee = await _receive_v1(env, 50_000, (3, 0))  # 3 msat charged, 10 msat taken
    assert "below" in str(answer["warning"])  # setfees applies the fees, and says so
    assert answer["fees"] == {"base_msat": 3, "ppm": 0}
    rec = await _only(env, "receive")
    assert (rec["fee_msat"], rec["federation_fee_msat"], rec["margin_msat"]) == (fee, TX_FEE, fee - TX_FEE)
    assert rec["margin_msat"] < 0
    losses = [m for lvl, m in env.logs if lvl == "warn" and f"a loss of {TX_FEE - fee} msat" in m]
    assert len(losses) == 1, env.logs
    metrics = (await env.gateway.ops.metrics())[0].decode()
    fid = rec["federation_id"]
    assert f'fedimint_gw_fee_shortfall_msat_total{{federation="{fid}",kind="receive"}} 7.0' in metrics
    assert f'fedimint_gw_fee_shortfalls_total{{federation="{fid}",kind="receive"}} 1.0' in metrics


async def test_a_refunded_receive_records_its_funding_and_its_refund(env: Env) -> None:
    from tests.e2e.test_swaps import _offer_with_wrong_preimage

    fed = await env.federation("refund-fee", (1,), fee=TX_FEE)
    info = await env.gateway.federations.connect(fed.invite_code)
    await _fund(env, fed, 50_000)
    user = await env.wallet(fed, "mallory")
    await user.faucet(1_000)  # the offer's transaction fee
    invoice = await _offer_with_wrong_preimage(env, fed, user, 20_000)
    payment_hash = bolt11.decode(invoice).payment_hash.hex()
    height = env.node.block_height
    answer = await env.htlc(
        *forward_payload(info["scid"], payment_hash, 20_000, 30_000, height + 100, height)
    )
    assert answer["result"] == "fail"
    await ecash_becomes(env, fed.federation_id, 50_000 - 2 * TX_FEE)  # the funding's and the refund's
    rec = await _only(env, "receive")
    assert rec["state"] == "refunded"
    assert rec["federation_fee_msat"] == 2 * TX_FEE and rec["margin_msat"] == -2 * TX_FEE  # nothing earned
    totals = (await env.gateway.summary(None, None))["kinds"]["receive"]
    assert (totals["fees_earned_msat"], totals["federation_fees_msat"], totals["margin_msat"]) == (
        0,
        2 * TX_FEE,
        -2 * TX_FEE,
    )
