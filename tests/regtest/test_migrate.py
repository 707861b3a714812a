"""`fedimint-migrate` inside lightningd: gateway G moves its liquidity from a v1 federation to a
v2 federation by exchanging ecash with peer gateway P, which serves both. No HTLC anywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.regtest.test_payments import _vet
from tests.regtest.user import User

pytestmark = pytest.mark.regtest


def _ecash(node: Any, fid: str) -> int:
    feds = node.rpc.call("fedimint-balances")["federations"]
    return int(next(f["ecash_msat"] for f in feds if f["federation_id"] == fid))


def _fund(node: Any, fed: Any, path: Path, amount: int) -> None:
    user = User(path, fed.invite_code)
    user.faucet(amount)
    notes = user.send_ecash(amount)
    node.rpc.call("fedimint-ecash-receive", {"federation_id": fed.federation_id, "notes": notes})


def test_migration_of_the_gateways_liquidity_between_two_federations(
    node_factory: Any, gw_opts: Any, devfeds: Any, directory: str
) -> None:
    g, p = node_factory.line_graph(2, opts=[gw_opts(), gw_opts()], wait_for_announce=True)
    g_api, p_api = (n.rpc.call("fedimint-info")["api_url"] for n in (g, p))
    old, new = devfeds("old-v1", "1"), devfeds("new-v2", "2")
    for node, api in ((g, g_api), (p, p_api)):
        _vet(new.admin_url, api)
        for fed in (old, new):
            node.rpc.call("fedimint-connect", {"invite_code": fed.invite_code})
    _fund(g, old, Path(directory) / "g-funder.wallet", 500_000)
    _fund(p, new, Path(directory) / "p-funder.wallet", 500_000)
    p.rpc.call("fedimint-setfees", [old.federation_id, 500, 1000, new.federation_id])

    # Before any peer exists, the command explains what it needs and changes nothing.
    with pytest.raises(Exception, match="no active peer gateway serves both"):
        g.rpc.call("fedimint-migrate", [old.federation_id, new.federation_id, 100_000])
    assert _ecash(g, old.federation_id) == 500_000

    g.rpc.call("fedimint-peer-add", {"node_id": p.info["id"], "url": p_api, "credit_limit_msat": 150_000})
    p.rpc.call("fedimint-peer-add", {"node_id": g.info["id"], "url": g_api, "credit_limit_msat": 150_000})
    g.rpc.call("fedimint-peer-add", {"node_id": p.info["id"], "url": p_api, "credit_limit_msat": 150_000})

    result = g.rpc.call("fedimint-migrate", [old.federation_id, new.federation_id, 300_000])

    assert result["state"] == "succeeded", result
    assert result["moved_msat"] == 300_000 and result["chunks"] == 2 and result["chunks_done"] == 2
    fee = 2 * (500 + 150_000 * 1000 // 1_000_000)  # P's pair fee, per chunk of 150 000 msat
    assert result["fee_msat"] == fee and result["received_msat"] == 300_000 - fee
    assert _ecash(g, old.federation_id) == 200_000
    assert _ecash(g, new.federation_id) == 300_000 - fee
    assert _ecash(p, old.federation_id) == 300_000
    assert _ecash(p, new.federation_id) == 500_000 - (300_000 - fee)
    # Ecash moved between the gateways' federation balances only: no HTLC, forward or payment.
    for node in (g, p):
        assert node.rpc.listforwards()["forwards"] == []
        assert all(ch["htlcs"] == [] for ch in node.rpc.listpeerchannels()["channels"])
        assert node.rpc.listsendpays()["payments"] == []
    mine = [x for x in g.rpc.call("fedimint-payments")["payments"] if x["kind"] == "migrate"]
    assert len(mine) == 1 and mine[0]["state"] == "succeeded" and mine[0]["moved_msat"] == 300_000
    theirs = [x for x in p.rpc.call("fedimint-payments")["payments"] if x["kind"] == "migrate"]
    assert len(theirs) == 2 and {x["direction"] for x in theirs} == {"in"}
    summary = g.rpc.call("fedimint-summary")["kinds"]["migrate"]
    assert summary["succeeded"] == 1 and summary["fees_paid_msat"] == fee
    assert "fedimint-migrate" in g.rpc.help("fedimint-migrate")["help"][0]["command"]
