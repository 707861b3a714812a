"""The plugin in lightningd joins devfed federations of every version at once."""

from __future__ import annotations

from typing import Any

import pytest
from pyln.client import RpcError
from pyln.testing.utils import wait_for

pytestmark = pytest.mark.regtest


def _feds(node: Any) -> dict[str, dict[str, Any]]:
    return {f["federation_id"]: f for f in node.rpc.call("fedimint-info")["federations"]}


def test_connect_three_federations_of_different_versions(
    node_factory: Any, gw_opts: Any, devfeds: Any
) -> None:
    v1 = devfeds("alpha", "1")
    v2 = devfeds("beta", "2")
    both = devfeds("gamma", "1,2")
    l1 = node_factory.get_node(options=gw_opts(), may_reconnect=True)
    api_url = l1.rpc.call("fedimint-info")["api_url"]
    import urllib.request

    req = urllib.request.Request(
        f"{v2.admin_url}/admin/gateways",
        data=f'{{"url": "{api_url}"}}'.encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(req, timeout=10).read()

    joined = {
        fed.federation_id: l1.rpc.call("fedimint-connect", {"invite_code": fed.invite_code})
        for fed in (v1, v2, both)
    }
    assert joined[v1.federation_id]["api_version"] == "1.0"
    assert joined[v2.federation_id]["api_version"] == "2.0"
    assert joined[both.federation_id]["api_version"] == "2.0"  # the highest common major
    assert joined[v1.federation_id]["registration"] == "registered"
    assert joined[v2.federation_id]["registration"] == "vetted"
    assert joined[both.federation_id]["registration"] == "not_vetted"  # its admin has not vetted us
    scids = {fid: j["scid"] for fid, j in joined.items()}
    assert len(set(scids.values())) == 3
    # Joining again is harmless and keeps the scid.
    again = l1.rpc.call("fedimint-connect", {"invite_code": v1.invite_code})
    assert again["scid"] == scids[v1.federation_id]

    info = l1.rpc.call("fedimint-info")
    assert {v["major"] for v in info["supported_api_versions"]} >= {1, 2}
    assert set(_feds(l1)) == set(scids)

    # A restart reconnects all three in the background, with the same scids.
    l1.restart()
    wait_for(lambda: all(f["status"] == "connected" for f in _feds(l1).values()))
    assert {fid: f["scid"] for fid, f in _feds(l1).items()} == scids

    # Leaving one: refused while... (nothing held here), then gone from info, history kept.
    left = l1.rpc.call("fedimint-leave", {"federation_id": v1.federation_id})
    assert left["left"] is True
    assert v1.federation_id not in _feds(l1)


def test_bad_invite_codes_are_refused_clearly(node_factory: Any, gw_opts: Any, devfeds: Any) -> None:
    l1 = node_factory.get_node(options=gw_opts())
    with pytest.raises(RpcError, match="invalid invite code"):
        l1.rpc.call("fedimint-connect", {"invite_code": "fed1notreally"})
    fed = devfeds("delta", "1")
    fed.stop()
    with pytest.raises(RpcError, match="no guardian of the invite code answered"):
        l1.rpc.call("fedimint-connect", {"invite_code": fed.invite_code})
    assert l1.rpc.call("fedimint-info")["federations"] == []


def test_fees_and_balances(node_factory: Any, gw_opts: Any, devfeds: Any) -> None:
    fed = devfeds("epsilon", "1")
    l1 = node_factory.get_node(options=gw_opts())
    l1.rpc.call("fedimint-connect", {"invite_code": fed.invite_code})
    res = l1.rpc.call("fedimint-setfees", {"federation_id": fed.federation_id, "base_msat": 0, "ppm": 100})
    assert res["fees"] == {"base_msat": 0, "ppm": 100}
    assert _feds(l1)[fed.federation_id]["fees"] == {"base_msat": 0, "ppm": 100}
    with pytest.raises(RpcError, match="ppm"):
        l1.rpc.call("fedimint-setfees", {"federation_id": fed.federation_id, "base_msat": 0, "ppm": -5})
    assert _feds(l1)[fed.federation_id]["fees"] == {"base_msat": 0, "ppm": 100}
    bal = l1.rpc.call("fedimint-balances")
    assert bal["federations"] == [{"federation_id": fed.federation_id, "name": "epsilon", "ecash_msat": 0}]
    assert "lightning_spendable_msat" in bal and "onchain_sat" in bal
