"""Devfed wallets driven from synchronous code: the demo's users and the gateways' treasurers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from contrib.devfed import wallet_ln
from contrib.devfed.wallet import Wallet

T = TypeVar("T")
FAUCET_CALL_MSAT = 100_000_000  # devfed's default faucet_limit_msat


class WalletUser:
    """A devfed wallet in one SQLite file; every call opens it on a fresh event loop."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def run(self, action: Callable[[Wallet], Awaitable[T]]) -> T:
        """Run ``action`` on the opened wallet and close it again."""

        async def main() -> T:
            async with aiohttp.ClientSession() as session:
                wallet = Wallet.open(self.path, session)
                try:
                    return await action(wallet)
                finally:
                    wallet.close()

        return asyncio.run(main())

    def join(self, invite_code: str) -> str:
        """Join the federation of ``invite_code``; returns its id."""
        return self.run(lambda w: w.join(invite_code))

    def major(self) -> int:
        """The API major the wallet speaks to its federation."""

        async def get(w: Wallet) -> int:
            return w.client.major

        return self.run(get)

    def balance(self) -> int:
        """Spendable ecash, msat."""

        async def get(w: Wallet) -> int:
            return w.balance_msat()

        return self.run(get)

    def faucet(self, amount_msat: int) -> int:
        """Ecash from the regtest faucet, in calls of at most ``FAUCET_CALL_MSAT`` (devfed's limit)."""

        async def take(w: Wallet) -> int:
            got, left = 0, amount_msat
            while left > 0:
                got += await w.faucet(min(left, FAUCET_CALL_MSAT))
                left -= FAUCET_CALL_MSAT
            return got

        return self.run(take)

    def send_ecash(self, amount_msat: int) -> str:
        """Take ``amount_msat`` out as a notes string."""
        return self.run(lambda w: w.send_ecash(amount_msat))

    def gateway_key_v1(self, node_id: str) -> str:
        """The v1 registration key of the gateway on node ``node_id``."""

        async def find(w: Wallet) -> str:
            for g in await wallet_ln.v1_gateways(w):
                if g["node_pubkey"] == node_id:
                    return str(g["gateway_pubkey"])
            raise LookupError(f"gateway {node_id} is not registered with this v1 federation")

        return self.run(find)

    def gateway_key(self, node_id: str, api_url: str) -> str:
        """The key outgoing contracts are locked to: v1 registration or v2 ``module_pubkey``."""
        if self.major() == 1:
            return self.gateway_key_v1(node_id)
        return str(self.run(lambda w: wallet_ln.routing_info(w, api_url))["module_pubkey"])

    def receive(self, node_id: str, api_url: str, amount_msat: int, description: str) -> wallet_ln.Receive:
        """A Lightning invoice paying into this wallet through the gateway (v1 or v2 flow)."""
        if self.major() == 1:
            key = self.gateway_key_v1(node_id)
            return self.run(lambda w: wallet_ln.receive_v1(w, key, amount_msat, description))
        return self.run(lambda w: wallet_ln.receive_v2(w, api_url, amount_msat, description))

    def claim(self, claim_id: str) -> int:
        """Claim a paid receive (v1: by payment hash, v2: by contract id) into notes; msat."""
        return self.run(lambda w: wallet_ln.claim_receive(w, claim_id))

    def pay(self, invoice: str, api_url: str, gateway_key: str, fee_msat: int) -> dict[str, Any]:
        """Pay ``invoice`` through the gateway; the answer has ``preimage`` or ``refunded_msat``."""
        return self.run(lambda w: wallet_ln.pay(w, invoice, api_url, gateway_key, fee_msat))


def claim_id(receive: wallet_ln.Receive) -> str:
    """What :meth:`WalletUser.claim` takes for this receive."""
    return wallet_ln.claim_id(receive)
