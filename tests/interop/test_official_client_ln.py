"""The official client's LNv1 module against a fake guardian: config and the gateway list."""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any

import pytest
from coincurve import PrivateKey

from contrib.official_client.driver import OfficialClient, OfficialClientError
from fedimint_gw.lightning import bolt11
from tests.interop import fedimint_testenc as enc
from tests.interop import tbs_vectors
from tests.interop.fake_guardian import (
    LN_INSTANCE,
    FakeFederation,
    RpcFailure,
    ln_module,
    module_api_versions,
)
from tests.interop.fake_ln import FakeGatewayApi, FakeLn
from tests.interop.fake_mint import FakeMint

KEY = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
NOTES = [
    enc.SpendableNote(1024, tbs_vectors.NOTE_1G.signature, tbs_vectors.NOTE_1G.spend_secret),
    enc.SpendableNote(2048, tbs_vectors.NOTE_2G.signature, tbs_vectors.NOTE_2G.spend_secret),
]
ANNOUNCEMENT: dict[str, Any] = {
    "info": {
        "mint_channel_id": 12345,
        "gateway_redeem_key": KEY,
        "node_pub_key": KEY,
        "lightning_alias": "fedimint-gw",
        "api": "http://127.0.0.1:9/",
        "route_hints": [],
        "fees": {"base_msat": 1000, "proportional_millionths": 100},
        "gateway_id": KEY,
        "supports_private_payments": False,
    },
    "vetted": False,
    "ttl": {"secs": 600, "nanos": 0},
}


def our_invoice(payment_hash: bytes, amount_msat: int) -> str:
    """A regtest invoice from the project's bolt11 encoder (the client checks the network)."""
    content = bolt11.InvoiceContent(
        currency="bcrt",
        amount_msat=amount_msat,
        timestamp=int(time.time()),
        payment_hash=payment_hash,
        payment_secret=bytes([0x42]) * 32,
        description="interop",
        features=bolt11.DEFAULT_FEATURES,
    )
    return bolt11.sign_with_key(bolt11.encode_unsigned(content), PrivateKey(bytes([9]) * 32))


async def test_update_gateway_cache_reads_our_announcements(official_client: OfficialClient) -> None:
    fed = FakeFederation(
        peers=1,
        modules={LN_INSTANCE: ln_module()},
        module_versions={LN_INSTANCE: module_api_versions()},
        handlers={"module_0_list_gateways": lambda _peer, _params: [ANNOUNCEMENT]},
    )
    await fed.start()
    try:
        await official_client.join("probe", fed.invite_code())
        assert await official_client.rpc_one("ln", "list_gateways") == []  # a local cache, empty at first
        await official_client.rpc("ln", "update_gateway_cache")

        assert [(c.method, c.params) for c in fed.calls_to("module_0_list_gateways")] == [
            ("module_0_list_gateways", [{"auth": None, "params": None}])
        ]
        [cached] = await official_client.rpc_one("ln", "list_gateways")
        assert cached["info"] == ANNOUNCEMENT["info"]
        assert cached["vetted"] is False
        assert 0 < cached["ttl"]["secs"] <= 600  # counted down from when it was read
        gateway = await official_client.rpc_one(
            "ln", "get_gateway", {"gateway_id": None, "force_internal": False}
        )
        assert gateway == ANNOUNCEMENT["info"]
    finally:
        await fed.stop()


async def test_a_guardian_error_reaches_the_caller_with_its_message(official_client: OfficialClient) -> None:
    def refuse(_peer: int, _params: Any) -> Any:
        raise RpcFailure("no gateways today")

    fed = FakeFederation(
        peers=1,
        modules={LN_INSTANCE: ln_module()},
        module_versions={LN_INSTANCE: module_api_versions()},
        handlers={"module_0_list_gateways": refuse},
    )
    await fed.start()
    try:
        await official_client.join("probe", fed.invite_code())
        expected = "list_gateways, 0 => Unspecified server error: no gateways today"
        with pytest.raises(OfficialClientError, match=re.escape(expected)):
            await official_client.rpc("ln", "update_gateway_cache")
    finally:
        await fed.stop()


async def test_pay_bolt11_invoice_funds_a_contract_and_calls_our_gateway(
    official_client: OfficialClient,
) -> None:
    preimage = bytes([0x33]) * 32
    gateway_key = PrivateKey(bytes([7]) * 32).public_key.format()
    gateway = await FakeGatewayApi(gateway_key.hex(), preimage).start()
    fed = FakeFederation(
        peers=1, modules={LN_INSTANCE: ln_module()}, module_versions={LN_INSTANCE: module_api_versions()}
    )
    await fed.start()
    mint = FakeMint(fed).install()
    announcement = {
        **ANNOUNCEMENT,
        "info": {
            **ANNOUNCEMENT["info"],
            "api": gateway.url,
            "gateway_redeem_key": gateway_key.hex(),
            "gateway_id": gateway_key.hex(),
            "fees": {"base_msat": 0, "proportional_millionths": 0},
        },
    }
    ln = FakeLn(fed, mint, gateways=[announcement]).install()
    try:
        await official_client.join("probe", fed.invite_code())
        oob = enc.oob_notes(NOTES, fed.federation_id)
        operation = await official_client.rpc_one(
            "mint", "reissue_external_notes", {"oob_notes": oob, "extra_meta": {}}
        )
        await official_client.rpc("mint", "subscribe_reissue_external_notes", {"operation_id": operation})
        await official_client.rpc("ln", "update_gateway_cache")
        invoice = our_invoice(hashlib.sha256(preimage).digest(), 1000)

        paid = await official_client.rpc_one(
            "ln",
            "pay_bolt11_invoice",
            {"maybe_gateway": announcement["info"], "invoice": invoice, "extra_meta": {}},
        )
        updates = await official_client.rpc(
            "ln", "subscribe_ln_pay", {"operation_id": paid["payment_type"]["lightning"]}, max_items=3
        )

        [(contract_id, (amount, contract))] = ln.contracts().items()
        assert paid["contract_id"] == contract_id and paid["fee"] == 0
        assert amount == 1000
        assert contract.hash == hashlib.sha256(preimage).digest()
        assert contract.gateway_key == gateway_key
        assert contract.timelock > ln.block_count and not contract.cancelled
        assert updates == [
            "created",
            {"funded": {"block_height": contract.timelock}},
            {"success": {"preimage": preimage.hex()}},
        ]
        # Guardian calls, in order of first use (await_* may repeat).
        methods = list(dict.fromkeys(c.method for c in fed.calls if c.method.startswith("module_0_")))
        assert methods[:4] == [
            "module_0_list_gateways",
            "module_0_block_count",
            "module_0_account",
            "module_0_await_account",
        ]
        assert fed.calls_to("module_0_account")[0].inner == contract_id  # a bare JSON string
        # The gateway sees GET /id, then POST /pay_invoice at the root of its announced API URL.
        assert [(method, path) for method, path, _ in gateway.requests] == [
            ("GET", "/id"),
            ("POST", "/pay_invoice"),
        ]
        body = gateway.requests[1][2]
        assert set(body) == {"federation_id", "contract_id", "payment_data", "preimage_auth"}
        assert body["federation_id"] == fed.federation_id.hex()
        assert body["contract_id"] == contract_id
        assert body["payment_data"] == {"invoice": invoice}
        assert len(bytes.fromhex(body["preimage_auth"])) == 32
    finally:
        await fed.stop()
        await gateway.stop()


async def test_create_bolt11_invoice_submits_an_offer_and_waits_for_the_gateway(
    official_client: OfficialClient,
) -> None:
    fed = FakeFederation(
        peers=1, modules={LN_INSTANCE: ln_module()}, module_versions={LN_INSTANCE: module_api_versions()}
    )
    await fed.start()
    mint = FakeMint(fed).install()
    FakeLn(fed, mint, gateways=[ANNOUNCEMENT]).install()
    try:
        await official_client.join("probe", fed.invite_code())
        await official_client.rpc("ln", "update_gateway_cache")
        created = await official_client.rpc_one(
            "ln",
            "create_bolt11_invoice",
            {
                "amount": 5000,
                "description": "interop receive",
                "expiry_time": None,
                "extra_meta": {},
                "gateway": ANNOUNCEMENT["info"],
            },
        )
        invoice = bolt11.decode(created["invoice"])  # our decoder reads the client's invoice
        assert invoice.amount_msat == 5000 and invoice.description == "interop receive"
        assert invoice.payment_hash.hex() == created["operation_id"]
        # One route hint: the gateway's node and mint_channel_id, zero fees (not the announced ones), CLTV
        # delta 30; the payee is a throwaway key.
        [[hop]] = invoice.route_hints
        info = ANNOUNCEMENT["info"]
        assert (hop.pubkey.hex(), hop.short_channel_id) == (info["node_pub_key"], info["mint_channel_id"])
        assert (hop.fee_base_msat, hop.fee_proportional_millionths, hop.cltv_expiry_delta) == (0, 0, 30)
        assert invoice.payee.hex() != info["node_pub_key"]

        # The offer transaction: no inputs, one LNv1 output LightningOutput::V0(Offer(..)) (variant 1).
        [call] = await fed.wait_for_calls("submit_transaction")
        tx = enc.decode_transaction(enc.decode_serde_module_encoding(call.inner[0]))
        assert tx.inputs == () and tx.signatures == ()
        [output] = tx.outputs
        version, fields = output.variant()
        kind, at = enc.read_varint(fields, 0)
        length, at = enc.read_varint(fields, at)
        offer = fields[at : at + length]
        amount, at = enc.read_varint(offer, 0)
        assert (output.instance_id, version, kind, amount) == (LN_INSTANCE, 0, 1, 5000)
        assert offer[at : at + 32] == invoice.payment_hash  # then the encrypted preimage, expiry
        # Then it polls the incoming contract's account (by payment hash) until a gateway funds it.
        [poll, *_] = await fed.wait_for_calls("module_0_account")
        assert poll.inner == invoice.payment_hash.hex()
    finally:
        await fed.stop()
