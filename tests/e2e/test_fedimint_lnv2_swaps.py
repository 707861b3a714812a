"""Swaps across families on one gateway: a devfed federation's user pays an LNv2 Fedimint
receiver's invoice, and an LNv2 sender pays a devfed v2 receiver's invoice, without Lightning
(no payment by the node), with what the users paid equal to what the gateway earned.
The LNv2 side is our own LNv2 client code (tests/support/lnv2_wallet.py).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import AsyncIterator

import pytest

from contrib.devfed import wallet_ln
from contrib.devfed.fedimint.faucet import faucet_notes
from contrib.devfed.fedimint.keys import LNV2_INSTANCE_ID, FedimintParams
from contrib.devfed.fedimint.server import RunningFedimint, start_fedimint
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.federation.fedimint.lnv2_client import Lnv2FederationClient, outgoing_handle
from fedimint_gw.fedimint.lnv2 import api as lnv2_api
from fedimint_gw.fedimint.lnv2 import items
from fedimint_gw.fedimint.lnv2.keys import sign_schnorr
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.lightning import bolt11
from fedimint_gw.store import payments as pay_repo
from tests.e2e.conftest import Env
from tests.e2e.helpers import DEFAULT_FEES, claim_receive, default_fee
from tests.support.lnv2_attach import attach_lnv2
from tests.support.lnv2_wallet import Lnv2Wallet


@pytest.fixture
async def fm(env: Env) -> AsyncIterator[RunningFedimint]:
    running = await start_fedimint(env.tmp / "fm", FedimintParams(name="swap-lnv2", lnv2=True))
    yield running
    await running.stop()


@pytest.fixture
async def api(fm: RunningFedimint, env: Env) -> AsyncIterator[FederationApi]:
    federation_api = FederationApi.from_config(fm.federation.client_config, env.session)
    yield federation_api
    await federation_api.close()


@pytest.fixture
async def lnv2(env: Env, fm: RunningFedimint) -> Lnv2FederationClient:
    return await attach_lnv2(env.gateway, env.node, env.session, fm, DEFAULT_FEES)


@pytest.mark.parametrize("src_major", [1, 2])
async def test_a_devfed_user_pays_an_lnv2_receiver(
    env: Env, fm: RunningFedimint, api: FederationApi, lnv2: Lnv2FederationClient, src_major: int
) -> None:
    got = await faucet_notes(env.session, fm.admin_url, fm.federation.client_config, 300_000)
    await lnv2.receive_ecash(got.oob.encode())
    src = await env.federation(f"src{src_major}", (src_major,))
    await env.gateway.federations.connect(src.invite_code)
    sender = await env.wallet(src, "sender")
    await sender.faucet(200_000)
    receiver = Lnv2Wallet(fm, api, env.session)
    amount = 50_000
    preimage = secrets.token_bytes(32)
    contract = receiver.incoming_contract(
        bytes.fromhex(lnv2.gateway_pubkey), amount - default_fee(amount), int(time.time()) + 3600, preimage
    )
    body = {
        "federation_id": fm.federation_id.hex,
        "contract": contract.to_json(),
        "amount": amount,
        "description": {"Direct": "swap target"},
        "expiry_secs": 3600,
    }
    async with env.session.post(f"{env.api_url}/create_bolt11_invoice", json=body) as resp:
        assert resp.status == 200
        invoice = await resp.json()
    src_client = env.gateway.federations.client(FederationId(src.federation_id))
    gw_before = (await src_client.balance()).value + (await lnv2.balance()).value
    result = await wallet_ln.pay(sender, invoice, env.api_url, src_client.gateway_pubkey, default_fee(amount))
    await env.settled(str(result["contract_id"]))
    assert result["preimage"] == preimage.hex()
    assert env.node.pay_calls == []  # no Lightning payment
    rec = await pay_repo.get(env.gateway.db.conn, f"send:{result['contract_id']}")
    assert rec is not None and rec.kind is PaymentKind.SWAP and rec.state is PaymentState.SUCCEEDED
    # the receiver takes its contract; the gateway earned the swap fee and the receive fee
    outpoint = await lnv2_api.await_incoming_contract(api, LNV2_INSTANCE_ID, contract.contract_id(), 2**40)
    assert outpoint is not None
    agg = await lnv2_api.aggregate_decryption_key(api, LNV2_INSTANCE_ID, receiver.config, contract, outpoint)
    assert (await receiver.spend(items.IncomingInput(outpoint, agg), amount - default_fee(amount))).accepted
    gw_after = (await src_client.balance()).value + (await lnv2.balance()).value
    assert gw_after - gw_before == 2 * default_fee(amount)
    assert sender.balance_msat() == 200_000 - amount - default_fee(amount)


async def test_an_lnv2_sender_pays_a_devfed_v2_receiver(
    env: Env, fm: RunningFedimint, api: FederationApi, lnv2: Lnv2FederationClient
) -> None:
    dst = await env.federation("dst2", (2,))
    await env.gateway.federations.connect(dst.invite_code)
    await env.fund_gateway(dst, 300_000)
    receiver = await env.wallet(dst, "receiver")
    receive = await wallet_ln.receive_v2(receiver, env.api_url, 50_000, "from lnv2")
    sender = Lnv2Wallet(fm, api, env.session)
    inv = bolt11.decode(receive.bolt11)
    total = 50_000 + default_fee(50_000)
    contract = sender.outgoing_contract(bytes.fromhex(lnv2.gateway_pubkey), total, 1000, inv.payment_hash)
    _, outpoint = await sender.fund(contract, total)
    dst_client = env.gateway.federations.client(FederationId(dst.federation_id))
    gw_before = (await dst_client.balance()).value + (await lnv2.balance()).value
    body = {
        "federation_id": fm.federation_id.hex,
        "outpoint": outpoint.to_json(),
        "contract": contract.to_json(),
        "invoice": {"Bolt11": receive.bolt11},
        "auth": sign_schnorr(sender.key, items.invoice_auth_message(receive.bolt11)).hex(),
    }
    async with env.session.post(f"{env.api_url}/send_payment", json=body) as resp:
        assert resp.status == 200
        answer = await resp.json()
    assert set(answer) == {"Ok"}
    assert hashlib.sha256(bytes(answer["Ok"])).hexdigest() == receive.payment_hash
    assert env.node.pay_calls == []
    await env.settled(outgoing_handle(outpoint, contract))
    net = await claim_receive(receiver, receive)
    assert net == 50_000 - default_fee(50_000)
    gw_after = (await dst_client.balance()).value + (await lnv2.balance()).value
    assert gw_after - gw_before == total - net  # what the users paid, the gateway earned
