"""Fixtures of the adapter contract suite: live devfed federations, adapters built through
their factories (found by the registry, never imported directly), and devfed user wallets."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from contrib.devfed.federation import FederationParams
from contrib.devfed.server import RunningFederation, start_federation
from contrib.devfed.wallet import Wallet
from fedimint_gw.clock import SystemClock
from fedimint_gw.domain.amount import Msat
from fedimint_gw.federation.adapter import AdapterContext, AdapterFactory
from fedimint_gw.federation.builtin import builtin_adapters
from fedimint_gw.federation.client import ApiVersion, FederationClient
from fedimint_gw.federation.notes import NoteWallet
from fedimint_gw.store.db import Database
from tests.support.wallets import WalletFactory, wallet_factory

REQUEST_TIMEOUT = 1.0
PARAMS = FederationParams(name="contract", guardians=4, threshold=3, majors=(1, 2), tx_fee_msat=0)


def factory_for(major: int) -> AdapterFactory:
    """The built-in adapter factory of a major version (through the registry)."""
    return {f.major: f for f in builtin_adapters()}[major]


@dataclass
class Gateway:
    """An adapter under test plus what built it (to rebuild it after a simulated crash)."""

    client: FederationClient
    ctx: AdapterContext
    factory: AdapterFactory

    def rebuilt(self, wallet: NoteWallet) -> FederationClient:
        """A fresh adapter with the same key over `wallet` (a restarted gateway)."""
        return self.factory.create(dataclasses.replace(self.ctx, wallet=wallet))

    @property
    def wallet(self) -> NoteWallet:
        """The gateway's note wallet."""
        wallet: NoteWallet = self.ctx.wallet
        return wallet


@pytest.fixture(params=[1, 2], ids=["v1", "v2"])
def major(request: pytest.FixtureRequest) -> int:
    """The adapter's API major."""
    value: int = request.param
    return value


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(str(tmp_path / "gateway.sqlite"))
    yield database
    await database.close()


FedFactory = Callable[..., Awaitable[RunningFederation]]


@pytest.fixture
async def start_fed(tmp_path: Path) -> AsyncIterator[FedFactory]:
    """Start federations (stopped at teardown)."""
    running: list[RunningFederation] = []

    async def start(name: str = "fed", **changes: Any) -> RunningFederation:
        params = FederationParams(**{**PARAMS.__dict__, **changes})
        fed = await start_federation(tmp_path / name, params, host="127.0.0.1", base_port=0, admin_port=0)
        running.append(fed)
        return fed

    yield start
    for fed in running:
        await fed.stop()


@pytest.fixture
async def fed(start_fed: FedFactory) -> RunningFederation:
    """A 3-of-4 federation serving API v1 and v2, no transaction fee."""
    return await start_fed()


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def make_gateway(session: aiohttp.ClientSession, db: Database) -> GatewayFactory:
    async def make(
        running: RunningFederation,
        major: int,
        timeout: float = REQUEST_TIMEOUT,
        wallet: NoteWallet | None = None,
    ) -> Gateway:
        factory = factory_for(major)
        config = await factory.fetch_config(session, running.guardian_urls[0], timeout)
        clock = SystemClock()
        ctx = AdapterContext(
            federation_id=running.federation_id,
            config=config,
            guardian_urls=factory.describe(config).guardian_urls,
            api_version=ApiVersion(major, 0),
            session=session,
            clock=clock,
            wallet=wallet or NoteWallet(db, running.federation_id, clock),
            gateway_secret=secrets.token_bytes(32),
            request_timeout=timeout,
        )
        return Gateway(factory.create(ctx), ctx, factory)

    return make


@pytest.fixture
async def gateway(make_gateway: GatewayFactory, fed: RunningFederation, major: int) -> AsyncIterator[Gateway]:
    """The adapter under test on `fed`."""
    gw = await make_gateway(fed, major)
    yield gw
    await gw.client.close()


UserFactory = WalletFactory


@pytest.fixture
async def make_user(tmp_path: Path, session: aiohttp.ClientSession) -> AsyncIterator[UserFactory]:
    """devfed user wallets joined to a federation."""
    async with wallet_factory(tmp_path, session) as make:
        yield make


@pytest.fixture
async def user(make_user: UserFactory, fed: RunningFederation) -> Wallet:
    """A user of `fed` holding 1 000 000 msat from the faucet."""
    wallet = await make_user(fed)
    await wallet.faucet(1_000_000)
    return wallet


async def fund_gateway(user: Wallet, client: FederationClient, amount: int) -> Msat:
    """Give the gateway `amount` msat of ecash: user's `send_ecash` → adapter's `receive_ecash`."""
    return await client.receive_ecash(await user.send_ecash(amount))


async def balance_becomes(client: FederationClient, amount: int, timeout: float = 30.0) -> None:
    """Wait until the gateway's balance is exactly `amount`: `fund_incoming` returns once the
    funding is accepted and its change notes are finished afterwards (issue 14, finding 5)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (balance := await client.balance()) != Msat(amount):
        if loop.time() > deadline:
            raise AssertionError(f"the balance stayed {balance}, not {amount} msat")
        await asyncio.sleep(0.05)


async def admin(session: aiohttp.ClientSession, running: RunningFederation, path: str, body: object) -> Any:
    """POST to the federation's admin API."""
    async with session.post(f"{running.admin_url}{path}", json=body) as resp:
        if resp.status != 200:
            raise AssertionError(f"admin {path}: HTTP {resp.status}: {await resp.text()}")
        return await resp.json()


async def set_fault(
    session: aiohttp.ClientSession, running: RunningFederation, peer: int, mode: str, delay_ms: int = 0
) -> None:
    """Fault-inject one guardian."""
    await admin(session, running, f"/admin/guardians/{peer}/fault", {"mode": mode, "delay_ms": delay_ms})
