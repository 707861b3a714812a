"""The user's side in regtest tests: a devfed wallet driven from synchronous test code."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from contrib.devfed import wallet_ln
from contrib.devfed.wallet import Wallet

T = TypeVar("T")


class User:
    """A devfed wallet in one file; every call opens it on a fresh event loop."""

    def __init__(self, path: Path, invite_code: str) -> None:
        self.path = path
        self.run(lambda w: w.join(invite_code))

    def run(self, action: Callable[[Wallet], Awaitable[T]]) -> T:
        async def main() -> T:
            async with aiohttp.ClientSession() as session:
                wallet = Wallet.open(self.path, session)
                try:
                    return await action(wallet)
                finally:
                    wallet.close()

        return asyncio.run(main())

    def balance(self) -> int:
        async def get(w: Wallet) -> int:
            return w.balance_msat()

        return self.run(get)

    def faucet(self, amount_msat: int) -> int:
        return self.run(lambda w: w.faucet(amount_msat))

    def send_ecash(self, amount_msat: int) -> str:
        return self.run(lambda w: w.send_ecash(amount_msat))

    def gateway_key_v1(self, node_id: str) -> str:
        async def find(w: Wallet) -> str:
            for g in await wallet_ln.v1_gateways(w):
                if g["node_pubkey"] == node_id:
                    return str(g["gateway_pubkey"])
            raise AssertionError(f"gateway {node_id} is not registered")

        return self.run(find)

    def receive_v1(self, gateway_key: str, amount_msat: int) -> wallet_ln.Receive:
        return self.run(lambda w: wallet_ln.receive_v1(w, gateway_key, amount_msat, "regtest receive"))

    def receive_v2(self, api_url: str, amount_msat: int) -> wallet_ln.Receive:
        return self.run(lambda w: wallet_ln.receive_v2(w, api_url, amount_msat, "regtest receive"))

    def claim(self, receive: wallet_ln.Receive) -> int:
        from tests.e2e.helpers import claim_receive

        return self.run(lambda w: claim_receive(w, receive))

    def pay(self, invoice: str, api_url: str, gateway_key: str, fee_msat: int) -> dict[str, Any]:
        return self.run(lambda w: wallet_ln.pay(w, invoice, api_url, gateway_key, fee_msat))

    def routing_info(self, api_url: str) -> dict[str, Any]:
        return self.run(lambda w: wallet_ln.routing_info(w, api_url))
