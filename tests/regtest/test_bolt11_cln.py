"""Invoices made by fedimint_gw.lightning.bolt11 as lightningd itself reads them."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from coincurve import PrivateKey

from fedimint_gw.lightning import bolt11

pytestmark = pytest.mark.regtest


def _content(payee_hint_node: bytes, **extra: Any) -> bolt11.InvoiceContent:
    fields: dict[str, Any] = dict(
        currency="bcrt",
        amount_msat=123_456,
        timestamp=int(time.time()),
        payment_hash=os.urandom(32),
        payment_secret=os.urandom(32),
        description="fedimint-gw test",
        expiry=600,
        min_final_cltv_expiry=24,
        features=bolt11.DEFAULT_FEATURES,
        route_hints=(
            (
                bolt11.RouteHop(
                    pubkey=payee_hint_node,
                    short_channel_id=1,
                    fee_base_msat=1000,
                    fee_proportional_millionths=250,
                    cltv_expiry_delta=40,
                ),
            ),
        ),
    )
    fields.update(extra)
    return bolt11.InvoiceContent(**fields)


def test_ephemeral_key_invoice_decodes_in_cln(node_factory: Any) -> None:
    l1 = node_factory.get_node()
    node_id = bytes.fromhex(l1.info["id"])
    key = PrivateKey()
    content = _content(node_id)
    text = bolt11.sign_with_key(bolt11.encode_unsigned(content), key)
    d = l1.rpc.decode(text)
    assert d["valid"] is True
    assert d["payee"] == key.public_key.format().hex()
    assert d["amount_msat"] == 123_456
    assert d["payment_hash"] == content.payment_hash.hex()
    assert d["payment_secret"] == content.payment_secret.hex()
    assert d["min_final_cltv_expiry"] == 24 and d["expiry"] == 600
    hop = d["routes"][0][0]
    assert hop["pubkey"] == l1.info["id"] and hop["short_channel_id"] == "0x0x1"
    assert hop["fee_base_msat"] == 1000 and hop["fee_proportional_millionths"] == 250
    assert hop["cltv_expiry_delta"] == 40
    # And our decoder agrees with what we encoded.
    ours = bolt11.decode(text)
    assert ours.payee == key.public_key.format() and ours.route_hints == content.route_hints


def test_signinvoice_signs_our_draft_with_the_node_key(node_factory: Any) -> None:
    l1 = node_factory.get_node()
    content = _content(bytes.fromhex(l1.info["id"]), route_hints=())
    draft = bolt11.encode_for_signinvoice(bolt11.encode_unsigned(content))
    signed = l1.rpc.call("signinvoice", {"invstring": draft})["bolt11"]
    d = l1.rpc.decode(signed)
    assert d["valid"] is True and d["payee"] == l1.info["id"]
    ours = bolt11.decode(signed)
    assert ours.payee.hex() == l1.info["id"] and ours.payment_hash == content.payment_hash


def test_cln_invoices_decode_with_our_decoder(node_factory: Any) -> None:
    l1 = node_factory.get_node()
    inv = l1.rpc.invoice(50_000, "label-1", "from lightningd")["bolt11"]
    ours = bolt11.decode(inv)
    theirs = l1.rpc.decode(inv)
    assert ours.amount_msat == 50_000 and ours.payee.hex() == l1.info["id"]
    assert ours.payment_hash.hex() == theirs["payment_hash"]
    assert ours.payment_secret is not None and ours.payment_secret.hex() == theirs["payment_secret"]
