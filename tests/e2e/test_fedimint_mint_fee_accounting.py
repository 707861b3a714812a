"""What Fedimint's mint fees do to the gateway's own accounts outside migrations (those are in
test_fedimint_peers.py): a federation charging upstream's default mint fee (100 msat per note
input and output) takes mint fees from the gateway's notes on every transaction of a flow."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from coincurve import PrivateKey

from contrib.devfed.fedimint.faucet import faucet_notes
from contrib.devfed.fedimint.keys import FedimintParams
from contrib.devfed.fedimint.ln import LN_INSTANCE_ID
from contrib.devfed.fedimint.server import RunningFedimint, start_fedimint
from fedimint_gw.crypto.bls import threshold_crypto as tc
from fedimint_gw.domain.amount import Msat
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.federation.fedimint.lnv2_client import Lnv2FederationClient
from fedimint_gw.federation.fedimint.notes import MintOpState
from fedimint_gw.fedimint.ln.contracts import IncomingContractOffer, payment_hash_of_key
from fedimint_gw.fedimint.ln.items import LightningClientConfig, ln_output_bytes
from fedimint_gw.fedimint.mint_api import submit_transaction
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transaction import ModuleItem, Transaction
from fedimint_gw.lightning import bolt11
from fedimint_gw.services.payments.requests import request_from_json
from fedimint_gw.store import payments as pay_repo
from tests.e2e.conftest import Env
from tests.e2e.fedimint_helpers import lnv2_send
from tests.e2e.helpers import DEFAULT_FEES, external_invoice
from tests.support.fake_node import final_payload, forward_payload
from tests.support.lnv2_attach import attach_lnv2
from tests.support.lnv2_wallet import Lnv2Wallet

AMOUNT = 40_000


@pytest.fixture
async def fm(env: Env) -> AsyncIterator[RunningFedimint]:
    params = FedimintParams(name="mint-fee-acct", lnv2=True, fee_base_msat=100)
    running = await start_fedimint(env.tmp / "fm", params)
    yield running
    await running.stop()


async def test_ecash_send_says_what_the_federation_took(env: Env, fm: RunningFedimint) -> None:
    client = await attach_lnv2(env.gateway, env.node, env.session, fm, DEFAULT_FEES)
    got = await faucet_notes(env.session, fm.admin_url, fm.federation.client_config, 200_000)
    await client.receive_ecash(got.oob.encode())
    before = (await client.balance()).value
    sent = await env.gateway.ecash_send(fm.federation_id.hex, 12_345, "payout-1")
    paid = before - (await client.balance()).value
    assert sent["amount_msat"] == 12_345 and sent["fee_msat"] == paid - 12_345 > 0
    assert await env.gateway.ecash_send(fm.federation_id.hex, 12_345, "payout-1") == sent  # a retry
    fees = await client.ecash_fees(Msat(12_345))
    assert fees.spend.value > 0 and fees.reissue.value > 0


async def test_a_receive_records_what_the_federation_took_for_its_funding(
    env: Env, fm: RunningFedimint
) -> None:
    client: Lnv2FederationClient = await attach_lnv2(env.gateway, env.node, env.session, fm, DEFAULT_FEES)
    got = await faucet_notes(env.session, fm.admin_url, fm.federation.client_config, 200_000)
    await client.receive_ecash(got.oob.encode())
    before = (await client.balance()).value
    api = FederationApi.from_config(fm.federation.client_config, env.session)
    try:
        user = Lnv2Wallet(fm, api, env.session)
        preimage = secrets.token_bytes(32)
        contract_amount = AMOUNT - DEFAULT_FEES.fee(Msat(AMOUNT)).value
        contract = user.incoming_contract(
            bytes.fromhex(client.gateway_pubkey), contract_amount, int(time.time()) + 3600, preimage
        )
        body = {
            "federation_id": fm.federation_id.hex,
            "contract": contract.to_json(),
            "amount": AMOUNT,
            "description": {"Direct": "mint fees"},
            "expiry_secs": 3600,
        }
        async with env.session.post(f"{env.api_url}/create_bolt11_invoice", json=body) as resp:
            invoice = await resp.json()
        inv = bolt11.decode(invoice)
        assert inv.payment_hash == hashlib.sha256(preimage).digest()
        height = env.node.block_height
        answer = await env.htlc(
            *final_payload(
                inv.payment_hash.hex(),
                (inv.payment_secret or b"").hex(),
                AMOUNT,
                AMOUNT,
                height + 50,
                height,
                1,
            )
        )
        assert answer["result"] == "resolve"
    finally:
        await api.close()
    (rec,) = (await env.gateway.payments(None, None, 50, None))["payments"]
    await _change_finished(client, rec["payment_id"])  # the funding's change joins the balance later
    spent = before - (await client.balance()).value
    assert spent > contract_amount  # the federation took mint fees on top of the contract
    (rec,) = (await env.gateway.payments(None, None, 50, None))["payments"]
    assert (rec["kind"], rec["state"]) == ("receive", "succeeded")
    # fee_msat stays the fee charged; the federation's take is recorded next to it, and the
    # margin is what the gateway really earned: the HTLC's AMOUNT less everything its ecash paid.
    assert rec["fee_msat"] == AMOUNT - contract_amount
    assert rec["federation_fee_msat"] == spent - contract_amount > 0, (rec, spent)
    assert rec["margin_msat"] == AMOUNT - spent
    stored = await pay_repo.get(env.gateway.db.conn, rec["payment_id"])
    assert stored is not None  # asked again (as after a restart), the adapter gives the same figure
    again = await client.funding_fee(request_from_json(stored.data["request"]), stored.payment_id)
    assert again.value == rec["federation_fee_msat"]


async def _change_finished(client: Any, operation_id: str) -> None:
    """Wait until the funding's change notes are stored (the HTLC resolves before that)."""
    for _ in range(400):
        op = await client._notes.get(operation_id)
        if op is not None and op.state is MintOpState.DONE:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the change of {operation_id} was never finished")


async def test_a_send_records_what_the_federation_took_for_its_claim(env: Env, fm: RunningFedimint) -> None:
    client: Lnv2FederationClient = await attach_lnv2(env.gateway, env.node, env.session, fm, DEFAULT_FEES)
    api = FederationApi.from_config(fm.federation.client_config, env.session)
    try:
        sender = Lnv2Wallet(fm, api, env.session)
        payment_hash = env.node.add_payee(secrets.token_bytes(32))
        invoice = external_invoice(payment_hash, AMOUNT)
        before = (await client.balance()).value
        payment_id, total = await lnv2_send(
            env, fm, client, sender, invoice, AMOUNT + DEFAULT_FEES.fee(Msat(AMOUNT)).value
        )
        await _settled(env, payment_id)
    finally:
        await api.close()
    gained = (await client.balance()).value - before
    (rec,) = (await env.gateway.payments(None, None, 50, None))["payments"]
    assert (rec["kind"], rec["state"], rec["fee_msat"]) == (
        "send",
        "succeeded",
        DEFAULT_FEES.fee(Msat(AMOUNT)).value,
    )
    # The claim gave the gateway the contract less the mint fees (per note it made) and the
    # module's input fee: that is what the federation took.
    assert rec["federation_fee_msat"] == total - gained > 0, (rec, total, gained)
    assert rec["margin_msat"] == rec["fee_msat"] - (total - gained)


async def _settled(env: Env, payment_id: str) -> None:
    for _ in range(400):
        stored = await pay_repo.get(env.gateway.db.conn, payment_id)
        if stored is not None and stored.state.terminal:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{payment_id} never finished")


async def test_an_lnv1_receive_records_what_the_federation_took_for_its_funding(env: Env) -> None:
    params = FedimintParams(name="mint-fee-ln", ln=True, fee_base_msat=100)
    fm1 = await start_fedimint(env.tmp / "fm-ln", params)
    try:
        info = await env.gateway.federations.connect(fm1.invite_code)
        client = env.gateway.federations.client(FederationId(fm1.federation_id.hex))
        got = await faucet_notes(env.session, fm1.admin_url, fm1.federation.client_config, 200_000)
        await client.receive_ecash(got.oob.encode())
        before = (await client.balance()).value
        key = PrivateKey().public_key.format()
        ln_config = LightningClientConfig.from_bytes(fm1.federation.client_config.modules[LN_INSTANCE_ID].raw)
        encrypted = tc.encrypt(tc.PublicKey.decode(ln_config.threshold_pub_key), key).to_bytes()
        offer = IncomingContractOffer(5000, payment_hash_of_key(key), encrypted, None)
        api = FederationApi.from_config(fm1.federation.client_config, env.session)
        try:
            items = [ModuleItem(LN_INSTANCE_ID, ln_output_bytes(offer))]
            assert (await submit_transaction(api, Transaction.signed([], items, b"\x02" * 8, []))).accepted
        finally:
            await api.close()
        height = env.node.block_height
        fee = DEFAULT_FEES.fee(Msat(5000)).value
        htlc = forward_payload(str(info["scid"]), offer.hash.hex(), 5000, 5000 + fee, height + 100, height)
        answer = await env.htlc(*htlc)
        assert answer["result"] == "resolve", (answer, env.logs[-5:])
        (rec,) = (await env.gateway.payments(None, None, 50, None))["payments"]
        await _change_finished(client, str(rec["payment_id"]))
        spent = before - (await client.balance()).value
        (rec,) = (await env.gateway.payments(None, None, 50, None))["payments"]
        assert (rec["kind"], rec["state"], rec["fee_msat"]) == ("receive", "succeeded", fee)
        assert rec["federation_fee_msat"] == spent - 5000 > 0, (rec, spent)
        assert rec["margin_msat"] == 5000 + fee - spent
    finally:
        await fm1.stop()
