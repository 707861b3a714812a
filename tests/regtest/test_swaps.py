"""Swaps inside a real lightningd: wallet-to-wallet across federations of mixed versions, no HTLC."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Any

import pytest

from tests.regtest.test_payments import _vet, settled
from tests.regtest.user import User

pytestmark = pytest.mark.regtest


def test_swaps_across_every_pair_of_three_federations(
    node_factory: Any, gw_opts: Any, devfeds: Any, directory: str
) -> None:
    _payer, l2 = node_factory.line_graph(2, opts=[{}, gw_opts()], wait_for_announce=True)
    api_url = l2.rpc.call("fedimint-info")["api_url"]
    feds = {"v1": devfeds("swv1", "1"), "v2": devfeds("swv2", "2"), "v12": devfeds("swv12", "1,2")}
    for name, fed in feds.items():
        if name != "v1":
            _vet(fed.admin_url, api_url)
        l2.rpc.call("fedimint-connect", {"invite_code": fed.invite_code})
        treasurer = User(Path(directory) / f"treasurer-{name}.wallet", fed.invite_code)
        treasurer.faucet(500_000)
        notes = treasurer.send_ecash(500_000)
        l2.rpc.call("fedimint-ecash-receive", {"federation_id": fed.federation_id, "notes": notes})
    users = {
        name: User(Path(directory) / f"user-{name}.wallet", fed.invite_code) for name, fed in feds.items()
    }
    for user in users.values():
        user.faucet(200_000)

    fees = {"base_msat": 2000, "ppm": 3000}
    for src, dst in itertools.permutations(feds, 2):
        receiver, sender = users[dst], users[src]
        if dst == "v1":
            receive = receiver.receive_v1(receiver.gateway_key_v1(l2.info["id"]), 10_000)
        else:
            receive = receiver.receive_v2(api_url, 10_000)
        key = (
            sender.routing_info(api_url)["module_pubkey"]
            if src != "v1"
            else sender.gateway_key_v1(l2.info["id"])
        )
        fee = fees["base_msat"] + 10_000 * fees["ppm"] // 1_000_000
        result = sender.pay(receive.bolt11, api_url, key, fee)
        assert hashlib.sha256(bytes.fromhex(result["preimage"])).hexdigest() == receive.payment_hash, (
            src,
            dst,
        )
        assert receiver.claim(receive) > 0

    settled(l2)
    swaps = [p for p in l2.rpc.call("fedimint-payments", {"limit": 100})["payments"] if p["kind"] == "swap"]
    assert len(swaps) == 6 and all(p["state"] == "succeeded" for p in swaps)
    assert {(p["federation_id"], p["target_federation_id"]) for p in swaps} == {
        (feds[a].federation_id, feds[b].federation_id) for a, b in itertools.permutations(feds, 2)
    }
    # Not one HTLC crossed the gateway's channel for any of it.
    channel = l2.rpc.listpeerchannels()["channels"][0]
    assert channel["htlcs"] == [] and l2.rpc.listforwards()["forwards"] == []
    assert l2.rpc.call("fedimint-summary")["kinds"]["swap"]["succeeded"] == 6
