"""Three lightningd gateways: A and B are linked only to R, which routes between them."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from tests.regtest.test_payments import _vet, settled
from tests.regtest.user import User

pytestmark = pytest.mark.regtest


def _peer(x: Any, y: Any) -> None:
    for one, other in ((x, y), (y, x)):
        url = other.rpc.call("fedimint-info")["api_url"]
        one.rpc.call(
            "fedimint-peer-add", {"node_id": other.info["id"], "url": url, "credit_limit_msat": 2_000_000}
        )


def test_forward_through_a_router_and_clean_failure_when_the_target_is_down(
    node_factory: Any, gw_opts: Any, devfeds: Any, directory: str
) -> None:
    a, r, b = node_factory.line_graph(
        3, opts=[gw_opts(), gw_opts(), gw_opts(may_fail=True)], wait_for_announce=True
    )
    a_api, b_api = (n.rpc.call("fedimint-info")["api_url"] for n in (a, b))
    fed_a, fed_b = devfeds("route-a", "1"), devfeds("route-b", "2")
    _vet(fed_b.admin_url, b_api)
    a.rpc.call("fedimint-connect", {"invite_code": fed_a.invite_code})
    b.rpc.call("fedimint-connect", {"invite_code": fed_b.invite_code})
    treasurer = User(Path(directory) / "treasurer.wallet", fed_b.invite_code)
    treasurer.faucet(300_000)
    b.rpc.call(
        "fedimint-ecash-receive",
        {"federation_id": fed_b.federation_id, "notes": treasurer.send_ecash(300_000)},
    )
    _peer(r, b)  # R learns B's federations first, then announces them to A
    _peer(a, r)
    assert [p["node_id"] for p in a.rpc.call("fedimint-peer-list")["peers"]] == [r.info["id"]]

    sender = User(Path(directory) / "sender.wallet", fed_a.invite_code)
    receiver = User(Path(directory) / "receiver.wallet", fed_b.invite_code)
    sender.faucet(300_000)
    key = sender.gateway_key_v1(a.info["id"])
    fee = 3 * (2000 + 50_000 * 3000 // 1_000_000)  # generous: A's, R's and B's fees at most
    receive = receiver.receive_v2(b_api, 50_000)
    later = receiver.receive_v2(b_api, 20_000)  # paid after B stops
    result = sender.pay(receive.bolt11, a_api, key, fee)
    assert hashlib.sha256(bytes.fromhex(result["preimage"])).hexdigest() == receive.payment_hash
    assert receiver.claim(receive) > 0
    settled(a)
    for node in (a, r, b):  # the whole way over the peer protocol
        assert node.rpc.listforwards()["forwards"] == []
        assert all(ch["htlcs"] == [] for ch in node.rpc.listpeerchannels()["channels"])
    kinds_r = {p["kind"] for p in r.rpc.call("fedimint-payments")["payments"]}
    assert "peer" in kinds_r  # R recorded the routed forward
    balances = {n: n.rpc.call("fedimint-peer-list")["peers"] for n in (a, b)}
    assert balances[a][0]["balance_msat"] < 0 and balances[b][0]["balance_msat"] > 0

    # B goes away: the forward cannot be delivered and Lightning cannot reach B either:
    # the user is refunded in full, nothing is left hanging.
    b.stop()
    before = sender.balance()
    result = sender.pay(later.bolt11, a_api, key, 3 * (2000 + 20_000 * 3000 // 1_000_000))
    assert "preimage" not in result and sender.balance() == before
