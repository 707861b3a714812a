"""Swaps between Fedimint's two Lightning modules through the plugin in a real lightningd: the
official Fedimint client (v0.7-era WASM build, LNv1) in one devfed federation (mint + ln) and our
own LNv2 client code in another (mint + lnv2), both joined by the same gateway node, which has no
channel at all: (a) the LNv2 user pays the official client's invoice, (b) the official client
pays the LNv2 user's invoice. Exact balances on both sides, the swap records and their fees.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from contrib.official_client.driver import OfficialClient
from tests.regtest.test_fedimint_ln import (
    LoopThread,
    _balance,
    _faucet_oob,
    _gateway_info,
    _states,
    official,
)
from tests.regtest.test_fedimint_lnv2 import (
    BASE,
    PPM,
    User,
    _ecash,
    _payments,
    fee_of,
)
from tests.regtest.test_payments import settled

pytestmark = pytest.mark.regtest


def test_official_lnv1_client_and_our_lnv2_client_swap_both_ways_in_lightningd(
    official: tuple[LoopThread, OfficialClient],
    node_factory: Any,
    gw_opts: Any,
    fedimint_devfed: dict[str, Any],
    lnv2_devfed: dict[str, Any],
) -> None:
    runner, client = official
    l2 = node_factory.get_node(
        options=gw_opts(**{"fedimint-gw-fee-base-msat": BASE, "fedimint-gw-fee-ppm": PPM})
    )
    api_url = l2.rpc.call("fedimint-info")["api_url"].rstrip("/")
    ln_invite, ln_admin = fedimint_devfed["invite_code"], fedimint_devfed["admin_url"]
    ln = l2.rpc.call("fedimint-connect", {"invite_code": ln_invite})
    assert ln["adapter"] == "fedimint-lnv1"
    ln_fid = ln["federation_id"]
    got = l2.rpc.call(
        "fedimint-ecash-receive",
        {"federation_id": ln_fid, "notes": runner.run(_faucet_oob(ln_invite, ln_admin, 300_000))},
    )
    assert got["received_msat"] == 300_000
    lnv2 = l2.rpc.call("fedimint-connect", {"invite_code": lnv2_devfed["invite_code"]})
    assert lnv2["adapter"] == "fedimint-lnv2"
    fid = lnv2["federation_id"]
    user = User(runner, lnv2_devfed["invite_code"], lnv2_devfed["admin_url"])
    try:
        l2.rpc.call("fedimint-ecash-receive", {"federation_id": fid, "notes": user.oob(300_000)})
        gateway_pk = bytes.fromhex(user.post(api_url + "/routing_info", fid)[1]["module_public_key"])
        runner.run(client.join("user", ln_invite, timeout=60))
        info = _gateway_info(runner, client)
        assert info["node_pub_key"] == l2.info["id"]

        # (a) LNv2 -> LNv1: the official client's invoice (its offer asks the full amount); our
        # LNv2 user's contract carries the invoice + the swap fee (the target federation's fees)
        amount_a = 50_000
        created = runner.run(
            client.rpc_one(
                "ln",
                "create_bolt11_invoice",
                {
                    "amount": amount_a,
                    "description": "swap in",
                    "expiry_time": None,
                    "extra_meta": {},
                    "gateway": info,
                },
                client_name="user",
            )
        )
        status, answer, _, _ = user.send(
            api_url, fid, gateway_pk, created["invoice"], amount_a + fee_of(amount_a)
        )
        assert status == 200 and set(answer) == {"Ok"}, answer
        states = runner.run(
            _states(client, "subscribe_ln_receive", created["operation_id"], {"claimed", "canceled"})
        )
        assert states[-1] == "claimed", states
        assert _balance(runner, client) == amount_a
        settled(l2)
        assert _ecash(l2, fid) == 300_000 + amount_a + fee_of(amount_a)
        assert _ecash(l2, ln_fid) == 300_000 - amount_a

        # (b) LNv1 -> LNv2: the official client pays our LNv2 user's invoice through /pay_invoice
        amount_b = 20_000
        invoice, preimage, contract = user.receive_invoice(api_url, fid, gateway_pk, amount_b)
        paid = runner.run(
            client.rpc_one(
                "ln",
                "pay_bolt11_invoice",
                {"maybe_gateway": info, "invoice": invoice, "extra_meta": {}},
                client_name="user",
            )
        )
        states = runner.run(
            _states(
                client,
                "subscribe_ln_pay",
                paid["payment_type"]["lightning"],
                {"success", "refunded", "failed"},
            )
        )
        assert "success" in states[-1], states
        assert states[-1]["success"]["preimage"] == preimage.hex(), states[-1]
        assert paid["fee"] == fee_of(amount_b)
        assert _balance(runner, client) == amount_a - amount_b - fee_of(amount_b)
        user.claim(contract)  # exactly amount_b less the receive fee (spend() checks)
        settled(l2)
        assert _ecash(l2, ln_fid) == 300_000 - amount_a + amount_b + fee_of(amount_b)
        assert _ecash(l2, fid) == 300_000 + amount_a + fee_of(amount_a) - (amount_b - fee_of(amount_b))
    finally:
        user.close()

    assert l2.rpc.listpeerchannels()["channels"] == [] and l2.rpc.listforwards()["forwards"] == []
    swaps = sorted(
        (p["federation_id"], p["target_federation_id"], p["amount_msat"], p["fee_msat"], p["state"])
        for p in _payments(l2)
        if p["kind"] == "swap"
    )
    assert swaps == sorted(
        [
            (fid, ln_fid, amount_a, fee_of(amount_a), "succeeded"),
            (ln_fid, fid, amount_b, fee_of(amount_b), "succeeded"),
        ]
    )
    assert hashlib.sha256(preimage).hexdigest() in {p["payment_hash"] for p in _payments(l2)}
