"""e2e fixtures: live devfed federations + the gateway services + a fake Lightning node."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from ephemeral_port_reserve import reserve

from contrib.devfed.federation import FederationParams
from contrib.devfed.server import RunningFederation, start_federation
from contrib.devfed.wallet import Wallet
from fedimint_gw.clock import Clock, SystemClock
from fedimint_gw.config import build_config
from fedimint_gw.domain.htlc import HtlcEvent
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.services.gateway import Gateway
from tests.support.fake_node import FakeNode


@dataclass
class Env:
    """One gateway, its fake node, and helpers to make federations and wallets."""

    gateway: Gateway
    node: FakeNode
    session: aiohttp.ClientSession
    tmp: Path
    api_url: str
    logs: list[tuple[str, str]]
    federations: list[RunningFederation]
    clock_offset: list[float] = field(default_factory=lambda: [0.0])  # shifts every federation's clock

    async def federation(self, name: str, majors: tuple[int, ...], fee: int = 0) -> RunningFederation:
        offset = self.clock_offset
        fed = await start_federation(
            self.tmp / name,
            FederationParams(name=name, guardians=4, threshold=3, majors=majors, tx_fee_msat=fee),
            clock=lambda: time.time() + offset[0],
        )
        self.federations.append(fed)
        if 2 in majors:
            async with self.session.post(f"{fed.admin_url}/admin/gateways", json={"url": self.api_url}) as r:
                r.raise_for_status()
        return fed

    async def wallet(self, fed: RunningFederation, name: str, major: int | None = None) -> Wallet:
        w = Wallet.open(self.tmp / f"{name}.wallet", self.session)
        await w.join(fed.invite_code, major)
        return w

    async def fund_gateway(self, fed: RunningFederation, amount_msat: int) -> None:
        """Faucet ecash into a wallet and hand it to the gateway out of band."""
        w = await self.wallet(fed, f"funder-{fed.federation_id[:6]}-{amount_msat}")
        await w.faucet(amount_msat)
        notes = await w.send_ecash(amount_msat)
        await self.gateway.federations.client(FederationId(fed.federation_id)).receive_ecash(notes)

    async def htlc(self, onion: dict[str, Any], htlc: dict[str, Any]) -> dict[str, Any]:
        return await self.gateway.handle_htlc(HtlcEvent.from_hook(onion, htlc))

    async def restart_gateway(self, clock: Clock | None = None) -> None:
        """Stop the gateway (as a crash would leave it: nothing finished) and start a new one
        (with `clock`, e.g. one that is later: the time the restart took)."""
        await self.gateway.stop()
        self.gateway = Gateway(self.gateway.config, self.node, clock or SystemClock(), self.log)
        await self.gateway.start()
        for fed in self.federations:
            fid = FederationId(fed.federation_id)
            await wait_until(lambda fid=fid: _connected(self.gateway, fid))

    async def settled(self, contract_id: str) -> None:
        """Wait until the send of `contract_id` finished (the claim runs after the user's answer)."""
        from fedimint_gw.store import payments as pay_repo

        async def done() -> bool:
            rec = await pay_repo.get(self.gateway.db.conn, f"send:{contract_id}")
            return rec is not None and rec.state.terminal

        await wait_until(done)

    def log(self, message: str, level: str) -> None:
        self.logs.append((level, message))


def _connected(gateway: Gateway, fid: FederationId) -> bool:
    try:
        gateway.federations.client(fid)
    except Exception:
        return False
    return True


async def wait_until(condition: Callable[[], bool | Awaitable[bool]], timeout: float = 30.0) -> None:
    """Poll `condition` until it holds; fail the test after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def ecash_becomes(env: Env, federation_id: str, amount: int) -> None:
    """Wait until the gateway holds exactly `amount` msat of ecash in the federation: a receive
    resolves its HTLC once its funding is accepted, and finishes its change notes afterwards."""
    client = env.gateway.federations.client(FederationId(federation_id))

    async def exact() -> bool:
        return (await client.balance()).value == amount

    try:
        await wait_until(exact)
    except AssertionError:
        raise AssertionError(f"the gateway holds {await client.balance()}, not {amount} msat") from None


@asynccontextmanager
async def _gateway_env(tmp_path: Path, payees: dict[str, bytes] | None = None) -> AsyncIterator[Env]:
    """A gateway with its own fake node, database and API port. Nodes given the same `payees`
    dict can pay each other's invoices (a fake Lightning network between them)."""
    port = reserve()
    node = FakeNode() if payees is None else FakeNode(payees=payees)
    logs: list[tuple[str, str]] = []
    config = build_config(
        {"fedimint-gw-db": str(tmp_path / "gw.sqlite3"), "fedimint-gw-api-bind": f"127.0.0.1:{port}"},
        {"lightning-dir": str(tmp_path), "network": "regtest"},
    )
    gateway = Gateway(config, node, SystemClock(), lambda m, lvl: logs.append((lvl, m)))
    await gateway.start()
    async with aiohttp.ClientSession() as session:
        e = Env(gateway, node, session, tmp_path, f"http://127.0.0.1:{port}", logs, [])
        try:
            yield e
        finally:
            await e.gateway.stop()
            for fed in e.federations:
                await fed.stop()


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with _gateway_env(tmp_path) as e:
        yield e


@pytest.fixture
async def env_b(tmp_path: Path, env: Env) -> AsyncIterator[Env]:
    """A second gateway (peer tests), on a fake node that can pay `env`'s node and back."""
    (tmp_path / "b").mkdir()
    async with _gateway_env(tmp_path / "b", env.node.payees) as e:
        yield e


@pytest.fixture
async def env_c(tmp_path: Path, env: Env) -> AsyncIterator[Env]:
    """A third gateway (router tests)."""
    (tmp_path / "c").mkdir()
    async with _gateway_env(tmp_path / "c", env.node.payees) as e:
        yield e
