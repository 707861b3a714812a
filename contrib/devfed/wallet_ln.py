"""Lightning through a gateway, for the user wallet (v1 offers / v2 contracts; outgoing both).

Gateway-facing calls (documented in docs/federation-api.md, "what wallets expect of a gateway"):
v1 ``POST {api}/v1/pay_invoice``; v2 ``POST {api}/v1/routing_info``, ``/v1/create_bolt11_invoice``,
``/v1/send_payment``.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import cast

from coincurve import PrivateKey

from contrib.devfed.client import http_json
from contrib.devfed.codec import object_id, sign
from contrib.devfed.contracts import SEND_AUTH_PURPOSE
from contrib.devfed.errors import DevfedError, ErrorCode
from contrib.devfed.transactions import offer_context, v2_contract_context
from contrib.devfed.wallet import Json, Wallet, as_json
from fedimint_gw.crypto.threshold_elgamal import encrypt
from fedimint_gw.lightning import bolt11

OUTGOING_TIMELOCK_BLOCKS = 144
V1_CLTV_DELTA = 144


@dataclass(frozen=True)
class Receive:
    """A pending Lightning receive: the invoice, its payment hash and the contract/offer id."""

    bolt11: str
    payment_hash: str
    contract_id: str | None


def _new_key() -> PrivateKey:
    return PrivateKey(secrets.token_bytes(32))


def build_offer(
    wallet: Wallet, amount_msat: int, expiry: int, preimage: bytes, claim_key: PrivateKey
) -> Json:
    """A v1 offer with the preimage threshold-encrypted to the federation's ``ln.pubkey``."""
    offer: Json = {
        "payment_hash": hashlib.sha256(preimage).hexdigest(),
        "amount_msat": amount_msat,
        "claim_pubkey": claim_key.public_key.format().hex(),
        "expiry": expiry,
    }
    offer["encrypted_preimage"] = encrypt(wallet.config.ln_pubkey, preimage, offer_context(offer)).to_dict()
    return offer


def build_v2_contract(
    wallet: Wallet,
    amount_msat: int,
    preimage: bytes,
    claim_key: PrivateKey,
    refund_pubkey: str,
    expiration_height: int,
) -> Json:
    """A v2 incoming contract (exactly the ``incoming_contract_v2`` output the gateway funds)."""
    contract: Json = {
        "kind": "incoming_contract_v2",
        "payment_hash": hashlib.sha256(preimage).hexdigest(),
        "amount_msat": amount_msat,
        "claim_pubkey": claim_key.public_key.format().hex(),
        "refund_pubkey": refund_pubkey,
        "expiration_height": expiration_height,
    }
    contract["encrypted_preimage"] = encrypt(
        wallet.config.ln_pubkey, preimage, v2_contract_context(contract)
    ).to_dict()
    return contract


async def v1_gateways(wallet: Wallet) -> list[Json]:
    """The v1 gateway registry (unexpired self-registrations)."""
    url = wallet.config.guardians[0].url
    data = as_json(await http_json(wallet.session, "GET", f"{url}/v1/gateways"))
    return [as_json(g) for g in cast(list[object], data["gateways"])]


async def receive_v1(
    wallet: Wallet, gateway_pubkey: str, amount_msat: int, description: str, expiry_secs: int = 3600
) -> Receive:
    """Publish an offer and make a bolt11 signed by an ephemeral key, route hint via the gateway."""
    gateway = next((g for g in await v1_gateways(wallet) if g["gateway_pubkey"] == gateway_pubkey), None)
    if gateway is None:
        raise DevfedError(ErrorCode.INVALID_REQUEST, f"gateway {gateway_pubkey} is not registered (v1)")
    preimage, claim_key, ephemeral = secrets.token_bytes(32), _new_key(), _new_key()
    now = int(time.time())
    offer = build_offer(wallet, amount_msat, now + expiry_secs, preimage, claim_key)
    url = wallet.config.guardians[0].url
    await http_json(wallet.session, "POST", f"{url}/v1/offers", offer)
    fees = as_json(gateway["fees"])
    hop = bolt11.RouteHop(
        pubkey=bytes.fromhex(str(gateway["node_pubkey"])),
        short_channel_id=int(str(gateway["scid"])),
        fee_base_msat=int(str(fees["base_msat"])),
        fee_proportional_millionths=int(str(fees["ppm"])),
        cltv_expiry_delta=V1_CLTV_DELTA,
    )
    content = bolt11.InvoiceContent(
        currency="bcrt",
        amount_msat=amount_msat,
        timestamp=now,
        payment_hash=hashlib.sha256(preimage).digest(),
        payment_secret=secrets.token_bytes(32),
        description=description,
        expiry=expiry_secs,
        features=bolt11.DEFAULT_FEATURES,
        route_hints=((hop,),),
    )
    invoice = bolt11.sign_with_key(bolt11.encode_unsigned(content), ephemeral)
    wallet.store.put_contract(
        str(offer["payment_hash"]), "receive_v1", {"claim_key": claim_key.secret.hex(), "offer": offer}
    )
    return Receive(invoice, str(offer["payment_hash"]), None)


async def routing_info(wallet: Wallet, gateway_api: str) -> Json:
    """v2 gateway's ``POST /v1/routing_info``."""
    body = {"federation_id": wallet.federation_id}
    return as_json(
        await http_json(wallet.session, "POST", f"{gateway_api.rstrip('/')}/v1/routing_info", body)
    )


async def receive_v2(
    wallet: Wallet, gateway_api: str, amount_msat: int, description: str, expiry_secs: int = 3600
) -> Receive:
    """Create a v2 incoming contract and have the gateway make the invoice (its node is the payee)."""
    info = await routing_info(wallet, gateway_api)
    fee = as_json(info.get("receive_fee", {"base_msat": 0, "ppm": 0}))
    net = amount_msat - int(str(fee["base_msat"])) - amount_msat * int(str(fee["ppm"])) // 1_000_000
    preimage, claim_key = secrets.token_bytes(32), _new_key()
    height = await wallet.client.block_height()
    contract = build_v2_contract(wallet, net, preimage, claim_key, str(info["module_pubkey"]), height + 144)
    body = {
        "federation_id": wallet.federation_id,
        "contract": contract,
        "amount_msat": amount_msat,
        "description": description,
        "expiry_secs": expiry_secs,
    }
    answer = as_json(
        await http_json(wallet.session, "POST", f"{gateway_api.rstrip('/')}/v1/create_bolt11_invoice", body)
    )
    cid = object_id(contract)
    wallet.store.put_contract(cid, "receive_v2", {"claim_key": claim_key.secret.hex(), "contract": contract})
    return Receive(str(answer["invoice"]), str(contract["payment_hash"]), cid)


async def claim_incoming(wallet: Wallet, contract_id: str, claim_key: PrivateKey) -> int:
    """Claim a decrypted (v1) or funded (v2) incoming contract into notes; returns msat."""
    view = await wallet.client.contract(contract_id)
    amount = int(str(view["amount_msat"]))
    inp: Json = {"kind": "incoming_claim", "contract_id": contract_id}
    await wallet.transact([(inp, claim_key)], [], receive_msat=amount)
    return amount - wallet.config.tx_fee_msat


async def fund_outgoing(
    wallet: Wallet, payment_hash: str, amount_msat: int, gateway_pubkey: str
) -> tuple[str, Json, PrivateKey]:
    """Lock ``amount_msat`` to the gateway; returns ``(contract_id, contract, refund key)``."""
    refund_key = _new_key()
    height = await wallet.client.block_height()
    contract: Json = {
        "kind": "outgoing_contract",
        "payment_hash": payment_hash,
        "amount_msat": amount_msat,
        "gateway_pubkey": gateway_pubkey,
        "refund_pubkey": refund_key.public_key.format().hex(),
        "timelock_height": height + OUTGOING_TIMELOCK_BLOCKS,
    }
    txid, _ = await wallet.transact([], [contract], spend_msat=amount_msat)
    cid = object_id(contract)
    wallet.store.put_contract(
        cid, "send", {"refund_key": refund_key.secret.hex(), "contract": contract, "txid": txid}
    )
    return cid, contract, refund_key


async def refund_outgoing(wallet: Wallet, contract_id: str, forfeit_signature: str | None = None) -> int:
    """Refund an outgoing contract (cancelled, forfeited, or past its timelock)."""
    stored = wallet.store.get_contract(contract_id)
    if stored is None:
        raise DevfedError(ErrorCode.UNKNOWN_CONTRACT, "the wallet did not fund this contract")
    data = stored[1]
    inp: Json = {"kind": "outgoing_refund", "contract_id": contract_id}
    if forfeit_signature:
        inp["forfeit_signature"] = forfeit_signature
    amount = int(str(as_json(data["contract"])["amount_msat"]))
    await wallet.transact(
        [(inp, PrivateKey(bytes.fromhex(str(data["refund_key"]))))], [], receive_msat=amount
    )
    return amount - wallet.config.tx_fee_msat


async def pay(wallet: Wallet, invoice: str, gateway_api: str, gateway_pubkey: str, fee_msat: int) -> Json:
    """Pay ``invoice`` through a gateway (v1 ``pay_invoice`` or v2 ``send_payment`` by the wallet's major).

    Returns ``{"contract_id", "preimage"}`` or, after a cancel/forfeit, ``{"contract_id", "refunded_msat"}``.
    """
    decoded = bolt11.decode(invoice)
    if decoded.amount_msat is None:
        raise DevfedError(ErrorCode.INVALID_REQUEST, "amountless invoices are not supported")
    cid, contract, refund_key = await fund_outgoing(
        wallet, decoded.payment_hash.hex(), decoded.amount_msat + fee_msat, gateway_pubkey
    )
    api = gateway_api.rstrip("/")
    try:
        if wallet.client.major == 1:
            body: Json = {
                "federation_id": wallet.federation_id,
                "contract_id": cid,
                "invoice": invoice,
                "preimage_auth": hashlib.sha256(refund_key.secret).hexdigest(),
            }
            answer = as_json(await http_json(wallet.session, "POST", f"{api}/v1/pay_invoice", body))
        else:
            stored = wallet.store.get_contract(cid)
            txid = str(stored[1]["txid"]) if stored else ""
            body = {
                "federation_id": wallet.federation_id,
                "contract": contract,
                "contract_id": cid,
                "outpoint": {"txid": txid, "out_idx": 0},
                "invoice": invoice,
                "auth": sign(refund_key, SEND_AUTH_PURPOSE, {"contract_id": cid, "invoice": invoice}),
            }
            answer = as_json(await http_json(wallet.session, "POST", f"{api}/v1/send_payment", body))
    except DevfedError:
        answer = {}
    if "preimage" in answer:
        return {"contract_id": cid, "preimage": answer["preimage"]}
    forfeit = answer.get("forfeit_signature")
    view = await wallet.client.contract(cid)
    if view["state"] == "claimed":
        return {"contract_id": cid, "preimage": view["preimage"]}
    if view["state"] == "cancelled" or forfeit:
        return {
            "contract_id": cid,
            "refunded_msat": await refund_outgoing(wallet, cid, cast(str | None, forfeit)),
        }
    return {"contract_id": cid, "pending": True}


# ---- one call per user action, whatever the wallet's API version --------------------------
async def gateway_terms(wallet: Wallet, gateway_node: str, gateway_api: str) -> tuple[str, Json]:
    """(key contracts are locked to, fees {base_msat, ppm}) of a gateway, in the wallet's version."""
    if wallet.client.major == 1:
        for g in await v1_gateways(wallet):
            if g["node_pubkey"] == gateway_node:
                return str(g["gateway_pubkey"]), as_json(g["fees"])
        raise DevfedError(ErrorCode.INVALID_REQUEST, f"gateway {gateway_node} is not registered (v1)")
    info = await routing_info(wallet, gateway_api)
    return str(info["module_pubkey"]), as_json(info["send_fee"])


async def receive(
    wallet: Wallet, gateway_node: str, gateway_api: str, amount_msat: int, description: str
) -> Receive:
    """An invoice paying into this wallet through the gateway (v1 offer or v2 contract)."""
    if wallet.client.major == 1:
        key, _ = await gateway_terms(wallet, gateway_node, gateway_api)
        return await receive_v1(wallet, key, amount_msat, description)
    return await receive_v2(wallet, gateway_api, amount_msat, description)


def claim_id(receive_: Receive) -> str:
    """What :func:`claim_receive` takes: the v2 contract id, or the v1 offer's payment hash."""
    return receive_.contract_id or receive_.payment_hash


async def claim_receive(wallet: Wallet, claim: str) -> int:
    """Claim a paid receive into notes (``claim`` from :func:`claim_id`); returns msat."""
    stored = wallet.store.get_contract(claim)
    if stored is None:
        raise DevfedError(ErrorCode.INVALID_REQUEST, f"this wallet made no receive {claim}")
    role, data = stored
    contract_id = claim
    if role == "receive_v1":
        url = wallet.config.guardians[0].url
        offer = as_json(await http_json(wallet.session, "GET", f"{url}/v1/offers/{claim}"))
        if not offer.get("contract_id"):
            raise DevfedError(ErrorCode.NOT_FUNDED, "not paid yet: no gateway has funded the offer")
        contract_id = str(offer["contract_id"])
    return await claim_incoming(wallet, contract_id, PrivateKey(bytes.fromhex(str(data["claim_key"]))))


async def pay_via(wallet: Wallet, invoice: str, gateway_node: str, gateway_api: str) -> Json:
    """Pay ``invoice`` through the gateway, offering the fee it announces."""
    decoded = bolt11.decode(invoice)
    key, fees = await gateway_terms(wallet, gateway_node, gateway_api)
    amount = decoded.amount_msat or 0
    fee = int(str(fees["base_msat"])) + amount * int(str(fees["ppm"])) // 1_000_000
    return await pay(wallet, invoice, gateway_api, key, fee)
