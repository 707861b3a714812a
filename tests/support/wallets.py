"""devfed user wallets for tests: opened in a temporary folder, joined, closed at the end."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from contrib.devfed.server import RunningFederation
from contrib.devfed.wallet import Wallet

WalletFactory = Callable[..., Awaitable[Wallet]]


@asynccontextmanager
async def wallet_factory(folder: Path, session: aiohttp.ClientSession) -> AsyncIterator[WalletFactory]:
    """`make(federation, name="user", major=None)` opens a new wallet file and joins."""
    wallets: list[Wallet] = []

    async def make(running: RunningFederation, name: str = "user", major: int | None = None) -> Wallet:
        wallet = Wallet.open(folder / f"{name}-{len(wallets)}.sqlite", session)
        await wallet.join(running.invite_code, major)
        wallets.append(wallet)
        return wallet

    try:
        yield make
    finally:
        for w in wallets:
            w.close()
