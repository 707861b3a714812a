"""Hostile and careless lightning-cli input in a real lightningd (issue 15, finding 7): each
call is refused with InvalidInput (2101), nothing changes, and lightningd's log has no
BROKEN line (bad input is logged at info)."""

from __future__ import annotations

from typing import Any

import pytest
from pyln.client import RpcError

pytestmark = pytest.mark.regtest

FID = "ab" * 32
PEER = "02" + "cd" * 32
UNICODE_123 = "१२३"

CALLS: list[tuple[str, dict[str, Any]]] = [
    ("fedimint-setfees", {"federation_id": FID, "base_msat": UNICODE_123, "ppm": 0}),
    ("fedimint-setfees", {"federation_id": FID, "base_msat": 2**63, "ppm": 0}),
    ("fedimint-setfees", {"federation_id": FID, "base_msat": 2**62, "ppm": 0}),
    ("fedimint-setfees", {"federation_id": FID + "\n", "base_msat": 1, "ppm": 1}),
    ("fedimint-ecash-send", {"federation_id": FID, "amount_msat": UNICODE_123}),
    ("fedimint-ecash-send", {"federation_id": FID, "amount_msat": 2**64}),
    ("fedimint-leave", {"federation_id": FID, "force": "maybe"}),
    ("fedimint-peer-add", {"node_id": PEER + "\n", "url": "http://127.0.0.1:9"}),
    ("fedimint-peer-add", {"node_id": PEER, "url": "http://"}),
    ("fedimint-peer-add", {"node_id": PEER, "url": "http://[::1"}),
    ("fedimint-peer-add", {"node_id": PEER, "url": "http://127.0.0.1:9", "credit_limit_msat": 2**63}),
    ("fedimint-payments", {"limit": 2**63}),
    ("fedimint-summary", {"start": UNICODE_123}),
    ("fedimint-migrate", {"from_federation": FID, "to_federation": FID, "amount_msat": UNICODE_123}),
]


def test_hostile_cli_input_is_refused_without_broken_logs(node_factory: Any, gw_opts: Any) -> None:
    l1 = node_factory.get_node(options=gw_opts())
    for method, params in CALLS:
        with pytest.raises(RpcError) as info:
            l1.rpc.call(method, params)
        assert info.value.error["code"] == 2101, (method, params, info.value.error)
    assert l1.rpc.call("fedimint-peer-list")["peers"] == []
    assert l1.rpc.call("fedimint-info")["federations"] == []
    assert not l1.daemon.is_in_log(r"BROKEN")
    assert l1.daemon.is_in_log(r"command refused \(InvalidInput\)")


def test_has_invoice_asks_lightningd_by_payment_hash(node_factory: Any) -> None:
    """The check that keeps strangers from registering a hash of this node's own invoices
    (issue 15, finding 1), against a real lightningd."""
    import asyncio
    import os

    from fedimint_gw.lightning.cln import ClnNode

    l1 = node_factory.get_node()
    own = l1.rpc.invoice(amount_msat=5000, label="own", description="peer settlement")["payment_hash"]
    node = ClnNode(os.path.join(l1.daemon.lightning_dir, "regtest", "lightning-rpc"))

    async def ask() -> tuple[bool, bool]:
        return await node.has_invoice(own), await node.has_invoice("00" * 32)

    assert asyncio.run(ask()) == (True, False)
