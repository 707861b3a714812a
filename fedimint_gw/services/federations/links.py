"""Reaching the joined federations: negotiation, the adapter's client, registration, reconnecting.

`FederationManager` decides which federations the gateway has joined; `FederationLinks` keeps
each one's live link. It negotiates the API version with the guardians (the served config must
hash to the federation id), opens the chosen adapter's client and registers the gateway, and
runs one background task per federation that reconnects with backoff and re-registers before
the registration's TTL runs out.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from fedimint_gw.clock import Clock
from fedimint_gw.config import GatewayConfig
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.errors import FederationUnreachable, GatewayError, IncompatibleFederation, InvalidInput
from fedimint_gw.federation.adapter import AdapterContext, AdapterFactory, FederationDescription
from fedimint_gw.federation.client import (
    ApiVersion,
    FederationClient,
    GatewayRegistration,
    OperationLog,
    RegistrationResult,
    RegistrationStatus,
)
from fedimint_gw.federation.notes import NoteWallet
from fedimint_gw.federation.registry import federation_id_of, fetch_versions, negotiate
from fedimint_gw.lightning.node import LightningNode
from fedimint_gw.services.federations.fedimint_family import is_fedimint_major, rediscover_fedimint
from fedimint_gw.store import federations as repo
from fedimint_gw.store.db import Database

REGISTRATION_TTL = 600  # seconds; re-registered at 0.85 of it


class ConnectionStatus(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


@dataclass
class LiveFederation:
    """A joined federation's runtime state (not persisted)."""

    status: ConnectionStatus
    client: FederationClient | None = None
    adapter: str = ""
    registration: RegistrationResult | None = None
    error: str = ""
    task: asyncio.Task[None] | None = None


@dataclass(frozen=True)
class FederationLinks:
    """Opens, registers and keeps connected the clients of the federations in `live`.

    It holds nothing of its own: each federation's state is its `LiveFederation` in `live`.
    """

    config: GatewayConfig
    db: Database
    node: LightningNode
    adapters: Mapping[int, AdapterFactory]
    session: aiohttp.ClientSession
    clock: Clock
    log: Any  # Callable[[str, str], None]
    live: Mapping[FederationId, LiveFederation]

    async def discover(
        self, urls: tuple[str, ...], expected_id: str, timeout: float
    ) -> tuple[dict[str, Any], FederationDescription, ApiVersion]:
        """Fetch and check the config, then negotiate the version with every guardian."""
        first = await fetch_versions(self.session, urls, timeout)
        if not first:
            raise FederationUnreachable(f"no guardian of the invite code answered ({', '.join(urls)})")
        usable = sorted({m for g in first for m in g.majors if m in self.adapters}, reverse=True)
        if not usable:
            offered = sorted({m for g in first for m in g.majors})
            raise IncompatibleFederation(
                f"the federation serves API majors {offered}; installed adapters speak "
                f"{sorted(self.adapters)}"
            )
        factory = self.adapters[usable[0]]
        config = await self._fetch_checked_config(factory, first[0].guardian, expected_id, timeout)
        try:
            desc = factory.describe(config)
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"the federation's config is malformed: {exc}") from None
        answers = await fetch_versions(self.session, desc.guardian_urls, timeout)
        version = negotiate(answers, desc.threshold, self.adapters)
        return config, desc, version

    async def _fetch_checked_config(
        self, factory: AdapterFactory, url: str, expected_id: str, timeout: float
    ) -> dict[str, Any]:
        try:
            config = await factory.fetch_config(self.session, url, timeout)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise FederationUnreachable(f"cannot fetch the federation config from {url}: {exc}") from None
        actual = federation_id_of(config)
        if actual != expected_id:
            raise InvalidInput(
                f"the config served at {url} hashes to federation id {actual}, not the invite code's "
                f"{expected_id}: wrong or tampered invite code"
            )
        return config

    async def open(
        self,
        rec: repo.FederationRecord,
        live: LiveFederation,
        version: ApiVersion,
        desc: FederationDescription,
    ) -> None:
        factory = self.adapters[version.major]
        if live.client is not None:
            await live.client.close()
        ctx = AdapterContext(
            federation_id=rec.federation_id.hex,
            config=rec.config,
            guardian_urls=desc.guardian_urls,
            api_version=version,
            session=self.session,
            clock=self.clock,
            wallet=NoteWallet(self.db, rec.federation_id.hex, self.clock),
            gateway_secret=await self.node.make_secret(f"fedimint-gw/federation/{rec.federation_id.hex}"),
            request_timeout=self.config.request_timeout,
        )
        live.client = factory.create(ctx)
        live.adapter = factory.name
        live.status = ConnectionStatus.CONNECTED
        live.error = ""
        await self.register(rec, live)
        await self.settle_operations(rec.federation_id, live.client)

    async def settle_operations(self, fid: FederationId, client: FederationClient) -> None:
        """Settle the ecash operations a crash cut short (their notes would stay reserved
        otherwise). A federation that cannot answer now is asked again at the next connect."""
        if not isinstance(client, OperationLog):
            return
        try:
            settled = await client.resume_operations()
        except GatewayError as exc:
            self.log(f"federation {fid.short()}: unfinished ecash operations wait: {exc.message}", "info")
            return
        if settled:
            self.log(
                f"federation {fid.short()}: settled {settled} ecash operation(s) a crash cut short", "info"
            )

    async def register(
        self, rec: repo.FederationRecord, live: LiveFederation, ttl: int = REGISTRATION_TTL
    ) -> None:
        if live.client is None:
            return
        info = await self.node.info()
        reg = GatewayRegistration(
            node_id=info.node_id,
            scid=rec.scid,
            api_url=self.config.api_url or "",
            fees=rec.fees,
            ttl_secs=ttl,
        )
        live.registration = await live.client.register(reg)
        if live.registration.status is RegistrationStatus.NOT_VETTED:
            self.log(
                f"federation {rec.federation_id.short()} has not vetted this gateway "
                f"({self.config.api_url}); ask its admin to add it",
                "warn",
            )

    async def keep_connected(self, rec: repo.FederationRecord, connected: bool = False) -> None:
        """Background: (re)connect with backoff while the federation is joined; refresh v1 registrations."""
        fid = rec.federation_id
        delay = 1.0
        while True:
            live = self.live.get(fid)
            current = await repo.get(self.db.conn, fid)
            if live is None or current is None or current.state is not repo.FederationState.ACTIVE:
                return
            try:
                if not connected:
                    await self._reconnect(current, live)
                    connected, delay = True, 1.0
                else:
                    if (
                        live.registration is not None
                        and live.registration.status is RegistrationStatus.REGISTERED
                    ):
                        await self.register(current, live)
                    if live.client is not None:
                        await self.settle_operations(fid, live.client)
                wait = REGISTRATION_TTL * 0.85
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                connected = False
                live.status = ConnectionStatus.DISCONNECTED
                live.client = None
                live.error = exc.message if isinstance(exc, GatewayError) else repr(exc)
                self.log(
                    f"federation {fid.short()} unreachable: {live.error}; retrying in {delay:.0f}s", "info"
                )
                wait, delay = delay, min(delay * 2, 30.0)
            await asyncio.sleep(wait)

    async def _reconnect(self, rec: repo.FederationRecord, live: LiveFederation) -> None:
        """Re-negotiate with a joined federation from its stored config."""
        if is_fedimint_major(rec.api_major):
            _, desc, version = await rediscover_fedimint(
                rec.config, rec.federation_id, self.session, self.adapters, self.config.request_timeout
            )
            await self.open(rec, live, version, desc)
            return
        factory = self.adapters.get(rec.api_major) or next(iter(self.adapters.values()), None)
        if factory is None:
            raise IncompatibleFederation("no federation adapter is installed")
        try:
            urls = factory.describe(rec.config).guardian_urls
        except (ValueError, KeyError, TypeError) as exc:
            raise IncompatibleFederation(
                f"stored config unreadable by adapter {factory.name}: {exc}"
            ) from None
        _, desc, version = await self.discover(urls, rec.federation_id.hex, self.config.request_timeout)
        if (version.major, version.minor) != (rec.api_major, rec.api_minor):
            async with self.db.transaction() as conn:
                await repo.insert(
                    conn,
                    repo.FederationRecord(
                        **{**rec.__dict__, "api_major": version.major, "api_minor": version.minor}
                    ),
                )
        await self.open(rec, live, version, desc)
