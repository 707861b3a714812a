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
import secrets
import time
from collections.abc import AsyncIterator

import pytest
from coincurve import PrivateKey

from contrib.devfed import wallet_ln
from contrib.devfed.fedimint.faucet import faucet_notes
from contrib.devfed.fedimint.keys import LNV2_INSTANCE_ID, FedimintParams
from contrib.devfed.fedimint.ln import LN_INSTANCE_ID
from contrib.devfed.fedimint.server import RunningFedimint, start_fedimint
from fedimint_gw.crypto.bls import threshold_crypto as tc
from fedimint_gw.domain.ids import FederationId, ShortChannelId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.federation.client import FederationClient
from fedimint_gw.federation.fedimint.lnv2_client import outgoing_handle
from fedimint_gw.fedimint.ln.contracts import IncomingContractOffer, payment_hash_of_key, preimage_of_key
from fedimint_gw.fedimint.ln.items import LightningClientConfig, ln_output_bytes
from fedimint_gw.fedimint.lnv2 import api as lnv2_api
from fedimint_gw.fedimint.lnv2 import items
from fedimint_gw.fedimint.lnv2.keys import sign_schnorr
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transaction import ModuleItem, Transaction
from fedimint_gw.lightning import bolt11
from fedimint_gw.store import payments as pay_repo
from tests.e2e.conftest import Env
from tests.e2e.helpers import claim_receive
from tests.e2e.test_fedimint_ln import outgoing, submit
from tests.support.lnv2_wallet import Lnv2Wallet

AMOUNT = 20_000


def fee_of(amount: int) -> int:
    """The gateway's default schedule in the e2e env: 2000 msat + 3000 ppm."""
    return 2000 + amount * 3000 // 1_000_000


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


async def join(env: Env, fm: RunningFedimint, adapter: str, fund_msat: int) -> FederationClient:
    """`fedimint-connect` with the federation's fed11 invite, then ecash for the gateway."""
    client, _scid = await join_scid(env, fm, adapter, fund_msat)
    return client


async def join_scid(
    env: Env, fm: RunningFedimint, adapter: str, fund_msat: int
) -> tuple[FederationClient, str]:
    """`join`, and the scid the gateway gave the federation."""
    info = await env.gateway.federations.connect(fm.invite_code)
    assert info["adapter"] == adapter, info
    client = env.gateway.federations.client(FederationId(fm.federation_id.hex))
    if fund_msat:
        notes = await faucet_notes(env.session, fm.admin_url, fm.federation.client_config, fund_msat)
        assert (await client.receive_ecash(notes.oob.encode())).value == fund_msat
    return client, str(info["scid"])


async def bal(client: FederationClient) -> int:
    return (await client.balance()).value


async def swap_record(env: Env, payment_id: str) -> pay_repo.PaymentRecord:
    await env.settled(payment_id.removeprefix("send:"))
    rec = await pay_repo.get(env.gateway.db.conn, payment_id)
    assert rec is not None
    return rec


async def lnv2_invoice(
    env: Env, fm: RunningFedimint, gw: FederationClient, receiver: Lnv2Wallet
) -> tuple[str, bytes, object]:
    """An LNv2 receive: the receiver's contract (invoice amount less our fee) as our invoice."""
    preimage = secrets.token_bytes(32)
    contract = receiver.incoming_contract(
        bytes.fromhex(gw.gateway_pubkey), AMOUNT - fee_of(AMOUNT), int(time.time()) + 3600, preimage
    )
    body = {
        "federation_id": fm.federation_id.hex,
        "contract": contract.to_json(),
        "amount": AMOUNT,
        "description": {"Direct": "cross-family swap"},
        "expiry_secs": 3600,
    }
    async with env.session.post(f"{env.api_url}/create_bolt11_invoice", json=body) as resp:
        assert resp.status == 200
        invoice = await resp.json()
    return str(invoice), preimage, contract


async def lnv2_claim(api: FederationApi, receiver: Lnv2Wallet, contract: object) -> None:
    """The LNv2 receiver takes its funded contract: notes worth exactly the contract."""
    from fedimint_gw.fedimint.lnv2.contracts import IncomingContract

    assert isinstance(contract, IncomingContract)
    outpoint = await lnv2_api.await_incoming_contract(api, LNV2_INSTANCE_ID, contract.contract_id(), 2**40)
    assert outpoint is not None
    agg = await lnv2_api.aggregate_decryption_key(api, LNV2_INSTANCE_ID, receiver.config, contract, outpoint)
    assert (await receiver.spend(items.IncomingInput(outpoint, agg), AMOUNT - fee_of(AMOUNT))).accepted


async def lnv1_offer_invoice(
    env: Env, fm: RunningFedimint, scid: str
) -> tuple[str, IncomingContractOffer, bytes]:
    """An LNv1 receive as the official client makes it: an offer for AMOUNT in the federation and
    an invoice signed by an ephemeral key whose route hint ends at our node's scid for it."""
    key = PrivateKey().public_key.format()
    ln_config = LightningClientConfig.from_bytes(fm.federation.client_config.modules[LN_INSTANCE_ID].raw)
    offer = IncomingContractOffer(
        AMOUNT,
        payment_hash_of_key(key),
        tc.encrypt(tc.PublicKey.decode(ln_config.threshold_pub_key), key).to_bytes(),
    )
    nonce = secrets.token_bytes(8)
    await submit(
        env, fm, Transaction.signed([], [ModuleItem(LN_INSTANCE_ID, ln_output_bytes(offer))], nonce, [])
    )
    hop = bolt11.RouteHop(bytes.fromhex(env.node.node_id), ShortChannelId.parse(scid).to_int(), 0, 0, 30)
    content = bolt11.InvoiceContent(
        currency="bcrt",
        amount_msat=AMOUNT,
        timestamp=int(time.time()),
        payment_hash=offer.hash,
        payment_secret=secrets.token_bytes(32),
        description="cross-family swap",
        features=bolt11.DEFAULT_FEATURES,
        expiry=3600,
        route_hints=((hop,),),
    )
    return bolt11.sign_with_key(bolt11.encode_unsigned(content), PrivateKey()), offer, key


async def lnv2_send(
    env: Env, fm: RunningFedimint, gw: FederationClient, sender: Lnv2Wallet, invoice: str
) -> tuple[str, int]:
    """An LNv2 sender's contract (invoice + our fee) and /send_payment; (payment id, preimage hex)."""
    total = AMOUNT + fee_of(AMOUNT)
    contract = sender.outgoing_contract(
        bytes.fromhex(gw.gateway_pubkey), total, 1000, bolt11.decode(invoice).payment_hash
    )
    submitted, outpoint = await sender.fund(contract, total)
    assert submitted.accepted
    body = {
        "federation_id": fm.federation_id.hex,
        "outpoint": outpoint.to_json(),
        "contract": contract.to_json(),
        "invoice": {"Bolt11": invoice},
        "auth": sign_schnorr(sender.key, items.invoice_auth_message(invoice)).hex(),
    }
    async with env.session.post(f"{env.api_url}/send_payment", json=body) as resp:
        assert resp.status == 200
        answer = await resp.json()
    assert set(answer) == {"Ok"}, answer
    return f"send:{outgoing_handle(outpoint, contract)}", total


def assert_swap(rec: pay_repo.PaymentRecord, src: RunningFedimint | str, dst: RunningFedimint | str) -> None:
    src_id = src if isinstance(src, str) else src.federation_id.hex
    dst_id = dst if isinstance(dst, str) else dst.federation_id.hex
    assert (rec.kind, rec.state) == (PaymentKind.SWAP, PaymentState.SUCCEEDED), rec
    assert (rec.federation_id, rec.target_federation_id) == (src_id, dst_id)
    assert (rec.amount_msat, rec.fee_msat) == (AMOUNT, fee_of(AMOUNT))


async def test_lnv1_user_pays_an_lnv2_receiver(
    env: Env, ln_fm: RunningFedimint, lnv2_fm: RunningFedimint, lnv2_api_: FederationApi
) -> None:
    src = await join(env, ln_fm, "fedimint-lnv1", 0)
    dst = await join(env, lnv2_fm, "fedimint-lnv2", 100_000)
    receiver = Lnv2Wallet(lnv2_fm, lnv2_api_, env.session)
    invoice, preimage, contract = await lnv2_invoice(env, lnv2_fm, dst, receiver)
    paid = AMOUNT + fee_of(AMOUNT)
    contract_id = await outgoing(env, ln_fm, bolt11.decode(invoice).payment_hash, paid, 100 + 500)
    body = {
        "federation_id": ln_fm.federation_id.hex,
        "contract_id": contract_id,
        "payment_data": {"invoice": invoice},
        "preimage_auth": "00" * 32,
    }
    async with env.session.post(f"{env.api_url}/pay_invoice", json=body) as resp:
        assert resp.status == 200
        assert bytes.fromhex(await resp.json()) == preimage
    assert_swap(await swap_record(env, f"send:{contract_id}"), ln_fm, lnv2_fm)
    assert env.node.pay_calls == []  # no Lightning
    await lnv2_claim(lnv2_api_, receiver, contract)
    assert await bal(src) == paid  # the LNv1 contract, claimed
    assert await bal(dst) == 100_000 - (AMOUNT - fee_of(AMOUNT))  # the LNv2 contract, funded
    # the user paid AMOUNT + fee, the receiver got AMOUNT - fee: the gateway earned both fees
    assert await bal(src) + await bal(dst) - 100_000 == 2 * fee_of(AMOUNT)


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
    assert await bal(src) + await bal(dst) - 100_000 == fee_of(AMOUNT)


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
        paid = AMOUNT + fee_of(AMOUNT)
        contract_id = await outgoing(env, ln_fm, bytes.fromhex(receive.payment_hash), paid, 100 + 500)
        body = {
            "federation_id": ln_fm.federation_id.hex,
            "contract_id": contract_id,
            "payment_data": {"invoice": receive.bolt11},
            "preimage_auth": "00" * 32,
        }
        async with env.session.post(f"{env.api_url}/pay_invoice", json=body) as resp:
            assert resp.status == 200
        assert_swap(await swap_record(env, f"send:{contract_id}"), ln_fm, v2.federation_id)
        net = await claim_receive(receiver, receive)
        assert net == AMOUNT - fee_of(AMOUNT)  # a devfed v2 receive carries the receive fee
        assert await bal(ln_client) == paid
        assert await bal(ln_client) + await bal(v2_client) - 100_000 == paid - net
    else:
        ln_client, scid = await join_scid(env, ln_fm, "fedimint-lnv1", 100_000)
        invoice, _offer, _key = await lnv1_offer_invoice(env, ln_fm, scid)
        payer = await env.wallet(v2, "payer")
        await payer.faucet(100_000)
        result = await wallet_ln.pay(payer, invoice, env.api_url, v2_client.gateway_pubkey, fee_of(AMOUNT))
        rec = await swap_record(env, f"send:{result['contract_id']}")
        assert_swap(rec, v2.federation_id, ln_fm)
        assert payer.balance_msat() == 100_000 - AMOUNT - fee_of(AMOUNT)
        assert await bal(v2_client) == AMOUNT + fee_of(AMOUNT)
        assert await bal(ln_client) == 100_000 - AMOUNT
    assert env.node.pay_calls == []
