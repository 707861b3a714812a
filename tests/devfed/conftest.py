"""Fixtures: real devfed federations on 127.0.0.1 ephemeral ports, and wallets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from contrib.devfed.federation import FederationParams
from contrib.devfed.server import RunningFederation, start_federation
from contrib.devfed.wallet import Wallet
from tests.support.wallets import WalletFactory, wallet_factory

SMALL = FederationParams(name="test", guardians=4, threshold=3, majors=(1, 2), tx_fee_msat=0)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def fed(tmp_path: Path) -> AsyncIterator[RunningFederation]:
    running = await start_federation(tmp_path / "fed", SMALL)
    yield running
    await running.stop()


@pytest.fixture
async def make_wallet(tmp_path: Path, session: aiohttp.ClientSession) -> AsyncIterator[WalletFactory]:
    async with wallet_factory(tmp_path, session) as make:
        yield make


async def set_fault(
    session: aiohttp.ClientSession, running: RunningFederation, peer: int, mode: str, delay_ms: int = 0
) -> None:
    url = f"{running.admin_url}/admin/guardians/{peer}/fault"
    async with session.post(url, json={"mode": mode, "delay_ms": delay_ms}) as resp:
        assert resp.status == 200, await resp.text()
