"""Swaps across protocol families and Lightning modules on one gateway, without Lightning.

Two Fedimint-family federations: one serving mint + `ln` (LNv1), one serving mint + `lnv2`,
both joined with `fed11` invites through the gateway's connect path (which picks the adapter by
module). A federation serving both modules is joined with one adapter (LNv1, preferred), so a
swap "within one federation across modules" cannot arise: a swap is always between two joined
federations. Here: LNv1 -> LNv2, LNv2 -> LNv1, LNv2 -> devfed v1, Fedimint LNv1 <-> devfed v2
(LNv1 <-> devfed v1 and devfed v1/v2 -> LNv2, LNv2 -> devfed v2 are in test_fedimint_ln.py and
test_fedimint_lnv2_swaps.py). Each asserts that the node paid nothing (no HTLC), the payments
log's record (kind, state, fee) and exact balances on both sides: what the users paid less what
they received is exactly what the gateway earned.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

import pytest

from contrib.devfed import wallet_ln
from contrib.devfed.fedimint.keys import FedimintParams
from contrib.devfed.fedimint.server import RunningFedimint, start_fedimint
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.fedimint.ln.contracts import preimage_of_key
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.store import payments as pay_repo
from tests.e2e.conftest import Env
from tests.e2e.fedimint_helpers import (
    AMOUNT,
    bal,
    join,
    join_scid,
    lnv1_offer_invoice,
    lnv1_pay,
    lnv2_claim,
    lnv2_invoice,
    lnv2_send,
)
from tests.e2e.helpers import claim_receive, default_fee
from tests.support.lnv2_wallet import Lnv2Wallet


@pytest.fixture
async def ln_fm(env: Env) -> AsyncIterator[RunningFedimint]:
    running = await start_fedimint(env.tmp / "fm-ln", FedimintParams(name="cross-ln", ln=True))
    yield running
    await running.stop()


@pytest.fixture
async def lnv2_fm(env: Env) -> AsyncIterator[RunningFedimint]:
    running = await start_fedimint(env.tmp / "fm-lnv2", FedimintParams(name="cross-lnv2", lnv2=True))
    yield running
    await running.stop()


@pytest.fixture
async def lnv2_api_(lnv2_fm: RunningFedimint, env: Env) -> AsyncIterator[FederationApi]:
    api = FederationApi.from_config(lnv2_fm.federation.client_config, env.session)
    yield api
    await api.close()


async def swap_record(env: Env, payment_id: str) -> pay_repo.PaymentRecord:
    await env.settled(payment_id.removeprefix("send:"))
    rec = await pay_repo.get(env.gateway.db.conn, payment_id)
    assert rec is not None
    return rec


def assert_swap(rec: pay_repo.PaymentRecord, src: RunningFedimint | str, dst: RunningFedimint | str) -> None:
    src_id = src if isinstance(src, str) else src.federation_id.hex
    dst_id = dst if isinstance(dst, str) else dst.federation_id.hex
    assert (rec.kind, rec.state) == (PaymentKind.SWAP, PaymentState.SUCCEEDED), rec
    assert (rec.federation_id, rec.target_federation_id) == (src_id, dst_id)
    assert (rec.amount_msat, rec.fee_msat) == (AMOUNT, default_fee(AMOUNT))


async def test_lnv1_user_pays_an_lnv2_receiver(
    env: Env, ln_fm: RunningFedimint, lnv2_fm: RunningFedimint, lnv2_api_: FederationApi
) -> None:
    src = await join(env, ln_fm, "fedimint-lnv1", 0)
    dst = await join(env, lnv2_fm, "fedimint-lnv2", 100_000)
    receiver = Lnv2Wallet(lnv2_fm, lnv2_api_, env.session)
    invoice, preimage, contract = await lnv2_invoice(env, lnv2_fm, dst, receiver)
    paid = AMOUNT + default_fee(AMOUNT)
    contract_id, answered = await lnv1_pay(env, ln_fm, invoice, paid)
    assert answered == preimage
    assert_swap(await swap_record(env, f"send:{contract_id}"), ln_fm, lnv2_fm)
    assert env.node.pay_calls == []  # no Lightning
    await lnv2_claim(lnv2_api_, receiver, contract)
    assert await bal(src) == paid  # the LNv1 contract, claimed
    assert await bal(dst) == 100_000 - (AMOUNT - default_fee(AMOUNT))  # the LNv2 contract, funded
    # the user paid AMOUNT + fee, the receiver got AMOUNT - fee: the gateway earned both fees
    assert await bal(src) + await bal(dst) - 100_000 == 2 * default_fee(AMOUNT)


async def test_lnv2_user_pays_an_lnv1_receiver(
    env: Env, ln_fm: RunningFedimint, lnv2_fm: RunningFedimint, lnv2_api_: FederationApi
) -> None:
    dst, scid = await join_scid(env, ln_fm, "fedimint-lnv1", 100_000)
    src = await join(env, lnv2_fm, "fedimint-lnv2", 0)
    invoice, offer, key = await lnv1_offer_invoice(env, ln_fm, scid)
    sender = Lnv2Wallet(lnv2_fm, lnv2_api_, env.session)
    payment_id, total = await lnv2_send(env, lnv2_fm, src, sender, invoice)
    rec = await swap_record(env, payment_id)
    assert_swap(rec, lnv2_fm, ln_fm)
    assert env.node.pay_calls == []
    ln = ln_fm.federation.ln
    assert ln is not None
    account = ln.store.account(offer.hash)
    assert account is not None and account.amount == AMOUNT  # the LNv1 user's, to claim with its key
    assert hashlib.sha256(preimage_of_key(key)).digest() == offer.hash
    assert await bal(src) == total  # the LNv2 contract claimed (devfed's LNv2 fees are zero)
    assert await bal(dst) == 100_000 - AMOUNT
    assert await bal(src) + await bal(dst) - 100_000 == default_fee(AMOUNT)


async def test_lnv2_user_pays_a_devfed_v1_receiver(
    env: Env, lnv2_fm: RunningFedimint, lnv2_api_: FederationApi
) -> None:
    src = await join(env, lnv2_fm, "fedimint-lnv2", 0)
    v1 = await env.federation("cross-v1", (1,))
    await env.gateway.federations.connect(v1.invite_code)
    await env.fund_gateway(v1, 100_000)
    dst = env.gateway.federations.client(FederationId(v1.federation_id))
    receiver = await env.wallet(v1, "receiver")
    receive = await wallet_ln.receive_v1(receiver, dst.gateway_pubkey, AMOUNT, "from lnv2")
    sender = Lnv2Wallet(lnv2_fm, lnv2_api_, env.session)
    payment_id, total = await lnv2_send(env, lnv2_fm, src, sender, receive.bolt11)
    assert_swap(await swap_record(env, payment_id), lnv2_fm, v1.federation_id)
    assert env.node.pay_calls == []
    assert await claim_receive(receiver, receive) == AMOUNT  # devfed v1 offers carry no receive fee
    assert await bal(src) == total
    assert await bal(dst) == 100_000 - AMOUNT


@pytest.mark.parametrize("direction", ["lnv1_to_v2", "v2_to_lnv1"])
async def test_fedimint_lnv1_and_devfed_v2_swap_both_ways(
    env: Env, ln_fm: RunningFedimint, direction: str
) -> None:
    v2 = await env.federation("cross-v2", (2,))
    await env.gateway.federations.connect(v2.invite_code)
    v2_client = env.gateway.federations.client(FederationId(v2.federation_id))
    if direction == "lnv1_to_v2":
        ln_client = await join(env, ln_fm, "fedimint-lnv1", 0)
        await env.fund_gateway(v2, 100_000)
        receiver = await env.wallet(v2, "receiver")
        receive = await wallet_ln.receive_v2(receiver, env.api_url, AMOUNT, "from lnv1")
        paid = AMOUNT + default_fee(AMOUNT)
        contract_id, answered = await lnv1_pay(env, ln_fm, receive.bolt11, paid)
        assert hashlib.sha256(answered).hexdigest() == receive.payment_hash
        assert_swap(await swap_record(env, f"send:{contract_id}"), ln_fm, v2.federation_id)
        net = await claim_receive(receiver, receive)
        assert net == AMOUNT - default_fee(AMOUNT)  # a devfed v2 receive carries the receive fee
        assert await bal(ln_client) == paid
        assert await bal(ln_client) + await bal(v2_client) - 100_000 == paid - net
    else:
        ln_client, scid = await join_scid(env, ln_fm, "fedimint-lnv1", 100_000)
        invoice, _offer, _key = await lnv1_offer_invoice(env, ln_fm, scid)
        payer = await env.wallet(v2, "payer")
        await payer.faucet(100_000)
        result = await wallet_ln.pay(
            payer, invoice, env.api_url, v2_client.gateway_pubkey, default_fee(AMOUNT)
        )
        rec = await swap_record(env, f"send:{result['contract_id']}")
        assert_swap(rec, v2.federation_id, ln_fm)
        assert payer.balance_msat() == 100_000 - AMOUNT - default_fee(AMOUNT)
        assert await bal(v2_client) == AMOUNT + default_fee(AMOUNT)
        assert await bal(ln_client) == 100_000 - AMOUNT
    assert env.node.pay_calls == []


async def test_lnv2_user_pays_an_lnv2_receiver_of_the_same_federation(
    env: Env, lnv2_fm: RunningFedimint, lnv2_api_: FederationApi
) -> None:
    """Both users in one LNv2 federation, the invoice is ours: a swap from the federation to
    itself (what Fedimint's gateway calls a direct swap), no Lightning."""
    gw = await join(env, lnv2_fm, "fedimint-lnv2", 100_000)
    receiver = Lnv2Wallet(lnv2_fm, lnv2_api_, env.session)
    invoice, _preimage, contract = await lnv2_invoice(env, lnv2_fm, gw, receiver)
    sender = Lnv2Wallet(lnv2_fm, lnv2_api_, env.session)
    payment_id, total = await lnv2_send(env, lnv2_fm, gw, sender, invoice)
    assert_swap(await swap_record(env, payment_id), lnv2_fm, lnv2_fm)
    assert env.node.pay_calls == []
    await lnv2_claim(lnv2_api_, receiver, contract)
    # in: the sender's contract (AMOUNT + swap fee); out: the receiver's (AMOUNT - receive fee)
    assert await bal(gw) == 100_000 + total - (AMOUNT - default_fee(AMOUNT))
    receive = await pay_repo.get(env.gateway.db.conn, f"v2:{contract.commitment.payment_image.value.hex()}")
    assert receive is not None and (receive.kind, receive.state) == (
        PaymentKind.RECEIVE,
        PaymentState.SUCCEEDED,
    )
    assert (receive.amount_msat, receive.fee_msat) == (AMOUNT - default_fee(AMOUNT), default_fee(AMOUNT))
