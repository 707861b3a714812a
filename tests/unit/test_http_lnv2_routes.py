"""Fedimint's LNv2 gateway routes at the root: the JSON shapes real clients send and expect
(bare JSON strings, null, {"Ok": [...]} / {"Err": "..."}), and malformed bodies refused with a
400 before the service is called. The service here is a recorder; the sender-auth check it
makes is the gateway's own (`Lnv2Gateway.send_auth_valid`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fedimint_gw.crypto.bls import tpe
from fedimint_gw.errors import PaymentRefused
from fedimint_gw.federation.fedimint.lnv2 import Lnv2Gateway
from fedimint_gw.fedimint.lnv2 import items
from fedimint_gw.fedimint.lnv2.contracts import (
    ContractTerms,
    IncomingContract,
    OutgoingContract,
    PaymentImage,
)
from fedimint_gw.fedimint.lnv2.gateway_api import (
    CreateBolt11InvoicePayload,
    PaymentFee,
    RoutingInfo,
    SendOutcome,
    SendOutcomeKind,
    SendPaymentPayload,
)
from fedimint_gw.fedimint.lnv2.keys import public_key_of, sign_schnorr
from fedimint_gw.http.app import HttpServer, create_app

FED = bytes([5]) * 32
GATEWAY_SK = bytes([7]) * 32
USER_SK = bytes([8]) * 32
PREIMAGE = bytes([42]) * 32
BOLT11 = "lnbcrt10u1pexample"
INFO = RoutingInfo(
    lightning_public_key=public_key_of(bytes([1]) * 32),
    module_public_key=public_key_of(GATEWAY_SK),
    send_fee_minimum=PaymentFee(0, 0),
    send_fee_default=PaymentFee(1000, 5000),
    expiration_delta_minimum=144,
    expiration_delta_default=500,
    receive_fee=PaymentFee(0, 1000),
)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[object] = []

    async def lnv2_routing_info(self, federation_id: bytes) -> RoutingInfo | None:
        self.calls.append(federation_id)
        return INFO if federation_id == FED else None

    async def lnv2_create_bolt11_invoice(self, payload: CreateBolt11InvoicePayload) -> str:
        self.calls.append(payload)
        return BOLT11

    async def lnv2_send_payment(self, payload: SendPaymentPayload) -> SendOutcome:
        self.calls.append(payload)
        if not Lnv2Gateway.send_auth_valid(payload.contract, payload.bolt11, payload.auth):
            raise PaymentRefused("auth is not the contract owner's signature over this invoice")
        return SendOutcome(SendOutcomeKind.PAID, PREIMAGE)


class NoPublicApi:
    """The devfed routes are not under test here: any call to them fails the test."""

    def __getattr__(self, name: str) -> Any:
        async def unexpected(*args: object) -> Any:
            raise AssertionError(f"unexpected call {name}")

        return unexpected


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, Recorder, aiohttp.ClientSession]]:
    recorder = Recorder()
    logs: list[tuple[str, str]] = []
    app = create_app(NoPublicApi(), lambda m, lvl: logs.append((m, lvl)), lnv2=recorder)  # type: ignore[arg-type]
    server = HttpServer(app, "127.0.0.1", 0)
    await server.start()
    async with aiohttp.ClientSession() as session:
        yield f"http://127.0.0.1:{server.port}", recorder, session
    await server.stop()
    assert not [m for m, lvl in logs if lvl == "error"]


def contract() -> OutgoingContract:
    return OutgoingContract(
        ContractTerms(
            PaymentImage.of_hash(hashlib.sha256(PREIMAGE).digest()),
            1_000_000,
            500,
            claim_pk=public_key_of(GATEWAY_SK),
            refund_pk=public_key_of(USER_SK),
            ephemeral_pk=public_key_of(bytes([3]) * 32),
        )
    )


def send_body(auth_key: bytes = USER_SK, bolt11: str = BOLT11) -> dict[str, object]:
    return {
        "federation_id": FED.hex(),
        "outpoint": {"txid": "ab" * 32, "out_idx": 1},
        "contract": contract().to_json(),
        "invoice": {"Bolt11": bolt11},
        "auth": sign_schnorr(auth_key, items.invoice_auth_message(BOLT11)).hex(),
    }


async def test_routing_info_takes_a_bare_federation_id(
    served: tuple[str, Recorder, aiohttp.ClientSession],
) -> None:
    url, recorder, session = served
    async with session.post(f"{url}/routing_info", json=FED.hex()) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body == INFO.to_json()
    assert body["receive_enabled"] is True and body["lightning_alias"] is None
    assert body["send_fee_default"] == {"base": 1000, "parts_per_million": 5000}
    assert body["module_public_key"] == public_key_of(GATEWAY_SK).hex()
    async with session.post(f"{url}/routing_info", json=(bytes(32)).hex()) as resp:
        assert resp.status == 200 and await resp.json() is None
    async with session.post(f"{url}/routing_info", json={"federation_id": FED.hex()}) as resp:
        assert resp.status == 400
    assert recorder.calls == [FED, bytes(32)]


async def test_send_payment_answers_ok_with_the_preimage_bytes(
    served: tuple[str, Recorder, aiohttp.ClientSession],
) -> None:
    url, recorder, session = served
    async with session.post(f"{url}/send_payment", json=send_body()) as resp:
        assert resp.status == 200
        assert await resp.json() == {"Ok": list(PREIMAGE)}
    (payload,) = recorder.calls
    assert isinstance(payload, SendPaymentPayload) and payload.outpoint.out_idx == 1


async def test_send_payment_with_anothers_auth_or_invoice_is_refused(
    served: tuple[str, Recorder, aiohttp.ClientSession],
) -> None:
    url, _, session = served
    for body in (send_body(auth_key=GATEWAY_SK), send_body(bolt11="lnbcrt20u1pother")):
        async with session.post(f"{url}/send_payment", json=body) as resp:
            assert resp.status == PaymentRefused.http_status
            assert (await resp.json())["error"]["name"] == "PaymentRefused"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b.update(invoice="lnbcrt1"),
        lambda b: b.update(auth="00" * 63),
        lambda b: b.update(outpoint={"txid": "ab" * 32}),
        lambda b: b["contract"].update(claim_pk="02" + "00" * 32),
        lambda b: b.pop("federation_id"),
    ],
)
async def test_malformed_send_bodies_are_400_and_reach_no_service(
    served: tuple[str, Recorder, aiohttp.ClientSession], mutate: Any
) -> None:
    url, recorder, session = served
    body = send_body()
    mutate(body)
    async with session.post(f"{url}/send_payment", json=body) as resp:
        assert resp.status == 400
    assert recorder.calls == []


async def test_create_bolt11_invoice_answers_a_bare_string(
    served: tuple[str, Recorder, aiohttp.ClientSession],
) -> None:
    vectors = json.loads((Path(__file__).parent / "vectors" / "tpe.json").read_text())
    ct = tpe.CipherText.decode(bytes.fromhex(vectors["cases"][0]["ciphertext_consensus_hex"]))
    incoming = IncomingContract(contract().terms, ct)
    body = {
        "federation_id": FED.hex(),
        "contract": incoming.to_json(),
        "amount": 1_000_000,
        "description": {"Direct": "coffee"},
        "expiry_secs": 600,
    }
    url, recorder, session = served
    async with session.post(f"{url}/create_bolt11_invoice", json=body) as resp:
        assert resp.status == 200
        assert await resp.json() == BOLT11
    (payload,) = recorder.calls
    assert isinstance(payload, CreateBolt11InvoicePayload) and payload.contract == incoming
    async with session.post(f"{url}/create_bolt11_invoice", json={**body, "amount": -1}) as resp:
        assert resp.status == 400
