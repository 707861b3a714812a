"""Two lightningd gateways peered with `fedimint-peer-add`: a forward with no HTLC, then settlement."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from tests.regtest.test_payments import _vet
from tests.regtest.test_payments import settled as payments_settled
from tests.regtest.user import User

pytestmark = pytest.mark.regtest


def test_peer_forward_without_htlc_then_settlement_over_lightning(
    node_factory: Any, gw_opts: Any, devfeds: Any, directory: str
) -> None:
    # A (l1) -- l2 -- B (l3): the channels only matter for the settlement payment.
    a, mid, b = node_factory.line_graph(3, opts=[gw_opts(), {}, gw_opts()], wait_for_announce=True)
    a_api, b_api = (n.rpc.call("fedimint-info")["api_url"] for n in (a, b))
    fed_a, fed_b = devfeds("peer-a", "1"), devfeds("peer-b", "2")
    _vet(fed_b.admin_url, b_api)
    a.rpc.call("fedimint-connect", {"invite_code": fed_a.invite_code})
    b.rpc.call("fedimint-connect", {"invite_code": fed_b.invite_code})
    treasurer = User(Path(directory) / "treasurer.wallet", fed_b.invite_code)
    treasurer.faucet(300_000)
    b.rpc.call(
        "fedimint-ecash-receive",
        {"federation_id": fed_b.federation_id, "notes": treasurer.send_ecash(300_000)},
    )

    added = a.rpc.call(
        "fedimint-peer-add", {"node_id": b.info["id"], "url": b_api, "credit_limit_msat": 1_000_000}
    )
    assert added["status"] == "pending"  # B's operator has not added A yet
    added = b.rpc.call(
        "fedimint-peer-add", {"node_id": a.info["id"], "url": a_api, "credit_limit_msat": 1_000_000}
    )
    assert added["status"] == "active"
    listed = a.rpc.call("fedimint-peer-list")["peers"]
    assert (
        listed[0]["status"] == "active"
        and listed[0]["federations"][0]["federation_id"] == fed_b.federation_id
    )
    assert "fedimint-peer-add" in a.rpc.help("fedimint-peer-add")["help"][0]["command"]

    sender = User(Path(directory) / "sender.wallet", fed_a.invite_code)
    receiver = User(Path(directory) / "receiver.wallet", fed_b.invite_code)
    sender.faucet(200_000)
    receive = receiver.receive_v2(b_api, 50_000)
    fee = 2 * (2000 + 50_000 * 3000 // 1_000_000)
    result = sender.pay(receive.bolt11, a_api, sender.gateway_key_v1(a.info["id"]), fee)
    assert hashlib.sha256(bytes.fromhex(result["preimage"])).hexdigest() == receive.payment_hash
    assert receiver.claim(receive) > 0
    payments_settled(a)
    # The forward went over the peer protocol: no HTLC, no forward, no payment on any node.
    for node in (a, mid, b):
        assert node.rpc.listforwards()["forwards"] == []
        assert all(ch["htlcs"] == [] for ch in node.rpc.listpeerchannels()["channels"])
    assert a.rpc.listsendpays()["payments"] == []
    kinds = {p["kind"] for p in a.rpc.call("fedimint-payments")["payments"]}
    assert kinds == {"peer"}
    assert a.rpc.call("fedimint-peer-list")["peers"][0]["balance_msat"] == -50_000
    assert b.rpc.call("fedimint-peer-list")["peers"][0]["balance_msat"] == 50_000

    b_paid_before = sum(
        i["amount_received_msat"] for i in b.rpc.listinvoices()["invoices"] if i["status"] == "paid"
    )
    settled = a.rpc.call("fedimint-peer-settle", {"node_id": b.info["id"]})
    assert settled["state"] == "done" and settled["balance_msat"] == 0
    assert b.rpc.call("fedimint-peer-list")["peers"][0]["balance_msat"] == 0
    paid = [i for i in b.rpc.listinvoices()["invoices"] if i["status"] == "paid"]
    assert (
        sum(i["amount_received_msat"] for i in paid) - b_paid_before == 50_000
    )  # real Lightning funds moved
    assert a.rpc.call("fedimint-info")["peers"][0]["balance_msat"] == 0
