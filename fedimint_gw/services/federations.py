"""Joining, serving and leaving federations: `fedimint-connect`, `-leave`, `-setfees`, `-balances`.

Every federation is reached through the adapter chosen by negotiation. On start each
joined federation reconnects in its own background task, so one unreachable federation
never blocks the others, the hook, or the commands; it shows as `disconnected` meanwhile.
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
from fedimint_gw.domain.amount import FeeSchedule, Msat
from fedimint_gw.domain.ids import FederationId, ShortChannelId
from fedimint_gw.domain.invite import parse_invite
from fedimint_gw.errors import (
    FederationUnreachable,
    GatewayError,
    IncompatibleFederation,
    InvalidInput,
    NotFound,
    PaymentRefused,
)
from fedimint_gw.federation.client import (
    ApiVersion,
    Feature,
    FederationClient,
    GatewayRegistration,
    RegistrationResult,
    RegistrationStatus,
)
from fedimint_gw.federation.notes import NoteWallet
from fedimint_gw.federation.registry import (
    AdapterContext,
    AdapterFactory,
    FederationDescription,
    federation_id_of,
    fetch_versions,
    negotiate,
)
from fedimint_gw.lightning.node import LightningNode
from fedimint_gw.services.htlc_router import HtlcRouter
from fedimint_gw.store import federations as repo
from fedimint_gw.store.db import Database

REGISTRATION_TTL = 600  # seconds; re-registered at 0.85 of it


class ConnectionStatus(enum.Enum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


@dataclass
class _Live:
    """A joined federation's runtime state (not persisted)."""

    status: ConnectionStatus
    client: FederationClient | None = None
    adapter: str = ""
    registration: RegistrationResult | None = None
    error: str = ""
    task: asyncio.Task[None] | None = None


class FederationManager:
    """Owns every federation client of the gateway."""

    def __init__(
        self,
        config: GatewayConfig,
        db: Database,
        node: LightningNode,
        router: HtlcRouter,
        adapters: Mapping[int, AdapterFactory],
        session: aiohttp.ClientSession,
        clock: Clock,
        log: Any,
    ) -> None:
        self._config = config
        self._db = db
        self._node = node
        self._router = router
        self._adapters = dict(adapters)
        self._session = session
        self._clock = clock
        self._log = log
        self._live: dict[FederationId, _Live] = {}
        self._connect_lock = asyncio.Lock()

    # ----- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Reconnect every active federation in the background."""
        for rec in await repo.list_all(self._db.conn, repo.FederationState.ACTIVE):
            self._router.add_scid(rec.scid, rec.federation_id)
            live = _Live(ConnectionStatus.CONNECTING)
            self._live[rec.federation_id] = live
            live.task = asyncio.create_task(self._keep_connected(rec))

    async def stop(self) -> None:
        for live in self._live.values():
            if live.task is not None:
                live.task.cancel()
        for live in self._live.values():
            if live.client is not None:
                await live.client.close()

    def client(self, fid: FederationId) -> FederationClient:
        """The connected client of a federation, or a clear error."""
        live = self._live.get(fid)
        if live is None:
            raise NotFound(f"the gateway has not joined federation {fid.hex}")
        if live.client is None:
            raise FederationUnreachable(
                f"federation {fid.short()} is {live.status.value}" + (f": {live.error}" if live.error else "")
            )
        return live.client

    def supported_versions(self) -> list[dict[str, object]]:
        return [
            {"major": f.major, "min_minor": f.min_minor, "adapter": f.name}
            for f in sorted(self._adapters.values(), key=lambda a: a.major)
        ]

    # ----- connect ---------------------------------------------------------------------
    async def connect(self, invite_code: str) -> dict[str, Any]:
        """Join a federation (idempotent: joining again reports the existing membership)."""
        try:
            invite = parse_invite(invite_code)
        except ValueError as exc:
            raise InvalidInput(f"invalid invite code: {exc}") from None
        async with self._connect_lock:
            existing = await repo.get(self._db.conn, invite.federation_id)
            if existing is not None and existing.state is repo.FederationState.ACTIVE:
                live = self._live.get(invite.federation_id)
                if live is not None and live.client is not None:
                    return await self.describe(existing)
            timeout = self._config.request_timeout
            config, desc, version = await self._discover(
                invite.guardian_urls, invite.federation_id.hex, timeout
            )
            now = self._clock.now()
            if existing is not None:
                rec = existing
                async with self._db.transaction() as conn:
                    rec = repo.FederationRecord(
                        **{
                            **existing.__dict__,
                            "name": desc.name,
                            "invite_code": invite_code.strip(),
                            "api_major": version.major,
                            "api_minor": version.minor,
                            "config": config,
                            "state": repo.FederationState.ACTIVE,
                            "updated_at": now,
                        }
                    )
                    await repo.insert(conn, rec)
            else:
                taken = await self._node.channel_scids()
                async with self._db.transaction() as conn:
                    while True:
                        scid = ShortChannelId.from_int(await repo.next_scid_index(conn))
                        if scid not in taken:
                            break
                    rec = repo.FederationRecord(
                        federation_id=invite.federation_id,
                        name=desc.name,
                        invite_code=invite_code.strip(),
                        api_major=version.major,
                        api_minor=version.minor,
                        scid=scid,
                        fees=self._config.default_fees,
                        config=config,
                        state=repo.FederationState.ACTIVE,
                        created_at=now,
                        updated_at=now,
                    )
                    await repo.insert(conn, rec)
            live = self._live.get(rec.federation_id) or _Live(ConnectionStatus.CONNECTING)
            self._live[rec.federation_id] = live
            self._router.add_scid(rec.scid, rec.federation_id)
            await self._open(rec, live, version, desc)
            if live.task is None or live.task.done():
                live.task = asyncio.create_task(self._keep_connected(rec, connected=True))
            self._log(
                f"joined federation {rec.federation_id.short()} ({rec.name}) "
                f"with API {version}, scid {rec.scid}",
                "info",
            )
            return await self.describe(rec)

    async def _discover(
        self, urls: tuple[str, ...], expected_id: str, timeout: float
    ) -> tuple[dict[str, Any], FederationDescription, ApiVersion]:
        """Fetch and check the config, then negotiate the version with every guardian."""
        first = await fetch_versions(self._session, urls, timeout)
        if not first:
            raise FederationUnreachable(f"no guardian of the invite code answered ({', '.join(urls)})")
        usable = sorted({m for g in first for m in g.majors if m in self._adapters}, reverse=True)
        if not usable:
            offered = sorted({m for g in first for m in g.majors})
            raise IncompatibleFederation(
                f"the federation serves API majors {offered}; installed adapters speak "
                f"{sorted(self._adapters)}"
            )
        factory = self._adapters[usable[0]]
        config = await self._fetch_checked_config(factory, first[0].guardian, expected_id, timeout)
        try:
            desc = factory.describe(config)
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"the federation's config is malformed: {exc}") from None
        answers = await fetch_versions(self._session, desc.guardian_urls, timeout)
        version = negotiate(answers, desc.threshold, self._adapters)
        return config, desc, version

    async def _fetch_checked_config(
        self, factory: AdapterFactory, url: str, expected_id: str, timeout: float
    ) -> dict[str, Any]:
        try:
            config = await factory.fetch_config(self._session, url, timeout)
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise FederationUnreachable(f"cannot fetch the federation config from {url}: {exc}") from None
        actual = federation_id_of(config)
        if actual != expected_id:
            raise InvalidInput(
                f"the config served at {url} hashes to federation id {actual}, not the invite code's "
                f"{expected_id}: wrong or tampered invite code"
            )
        return config

    async def _open(
        self, rec: repo.FederationRecord, live: _Live, version: ApiVersion, desc: FederationDescription
    ) -> None:
        factory = self._adapters[version.major]
        if live.client is not None:
            await live.client.close()
        ctx = AdapterContext(
            federation_id=rec.federation_id.hex,
            config=rec.config,
            guardian_urls=desc.guardian_urls,
            api_version=version,
            session=self._session,
            clock=self._clock,
            wallet=NoteWallet(self._db, rec.federation_id.hex, self._clock),
            gateway_secret=await self._node.make_secret(f"fedimint-gw/federation/{rec.federation_id.hex}"),
            request_timeout=self._config.request_timeout,
        )
        live.client = factory.create(ctx)
        live.adapter = factory.name
        live.status = ConnectionStatus.CONNECTED
        live.error = ""
        await self._register(rec, live)

    async def _register(self, rec: repo.FederationRecord, live: _Live, ttl: int = REGISTRATION_TTL) -> None:
        if live.client is None:
            return
        info = await self._node.info()
        reg = GatewayRegistration(
            node_id=info.node_id,
            scid=rec.scid,
            api_url=self._config.api_url or "",
            fees=rec.fees,
            ttl_secs=ttl,
        )
        live.registration = await live.client.register(reg)
        if live.registration.status is RegistrationStatus.NOT_VETTED:
            self._log(
                f"federation {rec.federation_id.short()} has not vetted this gateway "
                f"({self._config.api_url}); ask its admin to add it",
                "warn",
            )

    async def _keep_connected(self, rec: repo.FederationRecord, connected: bool = False) -> None:
        """Background: (re)connect with backoff while the federation is joined; refresh v1 registrations."""
        fid = rec.federation_id
        delay = 1.0
        while True:
            live = self._live.get(fid)
            current = await repo.get(self._db.conn, fid)
            if live is None or current is None or current.state is not repo.FederationState.ACTIVE:
                return
            try:
                if not connected:
                    await self._reconnect(current, live)
                    connected, delay = True, 1.0
                elif (
                    live.registration is not None
                    and live.registration.status is RegistrationStatus.REGISTERED
                ):
                    await self._register(current, live)
                wait = REGISTRATION_TTL * 0.85
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                connected = False
                live.status = ConnectionStatus.DISCONNECTED
                live.client = None
                live.error = exc.message if isinstance(exc, GatewayError) else repr(exc)
                self._log(
                    f"federation {fid.short()} unreachable: {live.error}; retrying in {delay:.0f}s", "info"
                )
                wait, delay = delay, min(delay * 2, 30.0)
            await asyncio.sleep(wait)

    async def _reconnect(self, rec: repo.FederationRecord, live: _Live) -> None:
        """Re-negotiate with a joined federation from its stored config."""
        factory = self._adapters.get(rec.api_major) or next(iter(self._adapters.values()), None)
        if factory is None:
            raise IncompatibleFederation("no federation adapter is installed")
        try:
            urls = factory.describe(rec.config).guardian_urls
        except (ValueError, KeyError, TypeError) as exc:
            raise IncompatibleFederation(
                f"stored config unreadable by adapter {factory.name}: {exc}"
            ) from None
        _, desc, version = await self._discover(urls, rec.federation_id.hex, self._config.request_timeout)
        if (version.major, version.minor) != (rec.api_major, rec.api_minor):
            async with self._db.transaction() as conn:
                await repo.insert(
                    conn,
                    repo.FederationRecord(
                        **{**rec.__dict__, "api_major": version.major, "api_minor": version.minor}
                    ),
                )
        await self._open(rec, live, version, desc)

    # ----- leave, fees, views ----------------------------------------------------------
    async def leave(self, fid: FederationId, force: bool) -> dict[str, Any]:
        """Stop serving a federation; its payment history stays."""
        rec = await repo.get(self._db.conn, fid)
        if rec is None or rec.state is not repo.FederationState.ACTIVE:
            raise NotFound(f"the gateway is not a member of federation {fid.hex}")
        balance = await NoteWallet(self._db, fid.hex, self._clock).balance()
        in_flight = await self._in_flight(fid)
        if not force and (balance.value > 0 or in_flight):
            raise PaymentRefused(
                f"federation {fid.short()} still holds {balance.value} msat of the gateway's ecash and "
                f"{in_flight} payment(s) in flight; migrate or spend it first, or pass force=true"
            )
        async with self._db.transaction() as conn:
            await repo.set_state(conn, fid, repo.FederationState.LEFT, self._clock.now())
        self._router.remove_federation(fid)
        live = self._live.pop(fid, None)
        if live is not None:
            if live.task is not None:
                live.task.cancel()
            if live.client is not None and Feature.SELF_REGISTRATION in live.client.features:
                try:  # a 1-second registration replaces ours: wallets stop routing to us
                    await self._register(rec, live, ttl=1)
                except GatewayError as exc:
                    self._log(f"could not withdraw the registration: {exc.message}", "warn")
            if live.client is not None:
                await live.client.close()
        self._log(f"left federation {fid.short()} ({rec.name})", "info")
        return {"federation_id": fid.hex, "left": True, "abandoned_ecash_msat": balance.value}

    async def _in_flight(self, fid: FederationId) -> int:
        async with self._db.conn.execute(
            "SELECT COUNT(*) FROM payments WHERE (federation_id = ? OR target_federation_id = ?) "
            "AND state NOT IN ('succeeded', 'failed', 'refunded')",
            (fid.hex, fid.hex),
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def set_fees(self, fid: FederationId, fees: FeeSchedule) -> dict[str, Any]:
        """Persist a federation's fees and re-register with them."""
        rec = await repo.get(self._db.conn, fid)
        if rec is None or rec.state is not repo.FederationState.ACTIVE:
            raise NotFound(f"the gateway is not a member of federation {fid.hex}")
        async with self._db.transaction() as conn:
            await repo.set_fees(conn, fid, fees, self._clock.now())
        updated = await repo.get(self._db.conn, fid)
        live = self._live.get(fid)
        if updated is not None and live is not None and live.client is not None:
            try:
                await self._register(updated, live)
            except GatewayError as exc:
                self._log(f"re-registration after fee change failed: {exc.message}", "warn")
        return {"federation_id": fid.hex, "fees": {"base_msat": fees.base_msat, "ppm": fees.ppm}}

    async def set_pair_fees(
        self, source: FederationId, target: FederationId, fees: FeeSchedule
    ) -> dict[str, Any]:
        """Persist the fee for swaps from `source` to `target` (0/0 makes migrations free)."""
        for fid in (source, target):
            rec = await repo.get(self._db.conn, fid)
            if rec is None or rec.state is not repo.FederationState.ACTIVE:
                raise NotFound(f"the gateway is not a member of federation {fid.hex}")
        if source == target:
            raise InvalidInput("a swap needs two different federations")
        async with self._db.transaction() as conn:
            await repo.set_pair_fees(conn, source, target, fees, self._clock.now())
        return {
            "federation_id": source.hex,
            "to_federation": target.hex,
            "fees": {"base_msat": fees.base_msat, "ppm": fees.ppm},
        }

    async def describe(self, rec: repo.FederationRecord) -> dict[str, Any]:
        """One federation as shown by fedimint-info and fedimint-connect."""
        live = self._live.get(rec.federation_id)
        balance: Msat = await NoteWallet(self._db, rec.federation_id.hex, self._clock).balance()
        reg = live.registration if live else None
        return {
            "federation_id": rec.federation_id.hex,
            "name": rec.name,
            "api_version": f"{rec.api_major}.{rec.api_minor}",
            "adapter": live.adapter if live else "",
            "scid": str(rec.scid),
            "balance_msat": balance.value,
            "fees": {"base_msat": rec.fees.base_msat, "ppm": rec.fees.ppm},
            "status": live.status.value if live else ConnectionStatus.DISCONNECTED.value,
            "registration": reg.status.value if reg else "unknown",
            **({"error": live.error} if live and live.error else {}),
        }

    async def describe_all(self) -> list[dict[str, Any]]:
        return [
            await self.describe(r) for r in await repo.list_all(self._db.conn, repo.FederationState.ACTIVE)
        ]
