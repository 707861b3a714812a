"""Small helpers shared by the e2e tests (the user side of each flow)."""

from __future__ import annotations

from typing import Any

from coincurve import PrivateKey

from contrib.devfed import wallet_ln
from contrib.devfed.client import http_json
from contrib.devfed.wallet import Wallet
from fedimint_gw.lightning import bolt11


class Crash(BaseException):
    """Stands for the plugin process dying where the test says (a BaseException, so no handler
    in the gateway catches it)."""


async def claim_receive(wallet: Wallet, receive: wallet_ln.Receive) -> int:
    """The receiver claims its funded incoming contract (v1 offer or v2 contract)."""
    return await wallet_ln.claim_receive(wallet, wallet_ln.claim_id(receive))


def route_hop(invoice: str) -> bolt11.RouteHop:
    """The last hop of the invoice's first route hint."""
    return bolt11.decode(invoice).route_hints[0][-1]
