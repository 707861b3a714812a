"""Users of Fedimint-family federations for e2e tests across families (the LNv1 user's
contracts are built as in test_fedimint_ln.py; the LNv2 user is tests/support/lnv2_wallet.py):
joining with a `fed11` invite, LNv1 offers and invoices as the official client makes them, LNv2
receives and sends through Fedimint's LNv2 routes."""

from __future__ import annotations

import secrets
import time

from coincurve import PrivateKey

from contrib.devfed.fedimint.faucet import faucet_notes
from contrib.devfed.fedimint.keys import LNV2_INSTANCE_ID
from contrib.devfed.fedimint.ln import LN_INSTANCE_ID
from contrib.devfed.fedimint.server import RunningFedimint
from fedimint_gw.crypto.bls import threshold_crypto as tc
from fedimint_gw.domain.ids import FederationId, ShortChannelId
from fedimint_gw.federation.client import FederationClient
from fedimint_gw.federation.fedimint.lnv2_client import outgoing_handle
from fedimint_gw.fedimint.ln.contracts import IncomingContractOffer, payment_hash_of_key
from fedimint_gw.fedimint.ln.items import LightningClientConfig, ln_output_bytes
from fedimint_gw.fedimint.lnv2 import api as lnv2_api
from fedimint_gw.fedimint.lnv2 import items
from fedimint_gw.fedimint.lnv2.contracts import IncomingContract
from fedimint_gw.fedimint.lnv2.keys import sign_schnorr
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transaction import ModuleItem, Transaction
from fedimint_gw.lightning import bolt11
from tests.e2e.conftest import Env
from tests.e2e.helpers import default_fee
from tests.e2e.test_fedimint_ln import outgoing, submit
from tests.support.lnv2_wallet import Lnv2Wallet

AMOUNT = 20_000


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


async def lnv2_invoice(
    env: Env, fm: RunningFedimint, gw: FederationClient, receiver: Lnv2Wallet
) -> tuple[str, bytes, IncomingContract]:
    """An LNv2 receive: the receiver's contract (invoice amount less our fee) as our invoice."""
    preimage = secrets.token_bytes(32)
    contract = receiver.incoming_contract(
        bytes.fromhex(gw.gateway_pubkey), AMOUNT - default_fee(AMOUNT), int(time.time()) + 3600, preimage
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


async def lnv2_claim(api: FederationApi, receiver: Lnv2Wallet, contract: IncomingContract) -> None:
    """The LNv2 receiver takes its funded contract: notes worth exactly the contract."""
    outpoint = await lnv2_api.await_incoming_contract(api, LNV2_INSTANCE_ID, contract.contract_id(), 2**40)
    assert outpoint is not None
    agg = await lnv2_api.aggregate_decryption_key(api, LNV2_INSTANCE_ID, receiver.config, contract, outpoint)
    assert (await receiver.spend(items.IncomingInput(outpoint, agg), AMOUNT - default_fee(AMOUNT))).accepted


async def lnv1_offer_invoice(
    env: Env, fm: RunningFedimint, scid: str, hint_fees: tuple[int, int] = (0, 0)
) -> tuple[str, IncomingContractOffer, bytes]:
    """An LNv1 receive as the official client makes it: an offer for AMOUNT in the federation and
    an invoice for AMOUNT signed by an ephemeral key whose route hint ends at our node's scid for
    it, charging `hint_fees` (base msat, ppm: the gateway's fees the payer adds)."""
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
    base, ppm = hint_fees
    hop = bolt11.RouteHop(bytes.fromhex(env.node.node_id), ShortChannelId.parse(scid).to_int(), base, ppm, 30)
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
    env: Env,
    fm: RunningFedimint,
    gw: FederationClient,
    sender: Lnv2Wallet,
    invoice: str,
    total: int = AMOUNT + default_fee(AMOUNT),
) -> tuple[str, int]:
    """An LNv2 sender's contract worth `total` (by default the invoice + our fee) and
    /send_payment; (payment id, total)."""
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
    assert set(answer) == {"Ok"}, (answer, env.logs[-5:])
    return f"send:{outgoing_handle(outpoint, contract)}", total


async def lnv1_pay(env: Env, fm: RunningFedimint, invoice: str, paid: int) -> tuple[str, bytes]:
    """An LNv1 user's outgoing contract worth `paid` for `invoice`, and Fedimint's /pay_invoice
    to `env`'s gateway: (contract id, the preimage it answered)."""
    contract_id = await outgoing(env, fm, bolt11.decode(invoice).payment_hash, paid, 100 + 500)
    body = {
        "federation_id": fm.federation_id.hex,
        "contract_id": contract_id,
        "payment_data": {"invoice": invoice},
        "preimage_auth": "00" * 32,
    }
    async with env.session.post(f"{env.api_url}/pay_invoice", json=body) as resp:
        assert resp.status == 200, await resp.text()
        return contract_id, bytes.fromhex(await resp.json())
