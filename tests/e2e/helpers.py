"""Small helpers shared by the e2e tests (the user side of each flow)."""

from __future__ import annotations

from typing import Any

from coincurve import PrivateKey

from contrib.devfed import wallet_ln
from contrib.devfed.client import http_json
from contrib.devfed.wallet import Wallet
from fedimint_gw.lightning import bolt11


async def claim_receive(wallet: Wallet, receive: wallet_ln.Receive) -> int:
    """The receiver claims its funded incoming contract (v1 offer or v2 contract)."""
    if receive.contract_id is None:  # v1: the offer names the contract once a gateway bought it
        url = wallet.config.guardians[0].url
        offer: Any = await http_json(wallet.session, "GET", f"{url}/v1/offers/{receive.payment_hash}")
        cid = str(offer["contract_id"])
        stored = wallet.store.get_contract(receive.payment_hash)
    else:
        cid = receive.contract_id
        stored = wallet.store.get_contract(cid)
    if stored is None:
        raise AssertionError("the wallet lost its receive")
    key = PrivateKey(bytes.fromhex(str(stored[1]["claim_key"])))
    return await wallet_ln.claim_incoming(wallet, cid, key)


def route_hop(invoice: str) -> bolt11.RouteHop:
    """The last hop of the invoice's first route hint."""
    return bolt11.decode(invoice).route_hints[0][-1]
