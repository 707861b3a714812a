"""Joining, serving and leaving federations: `fedimint-connect`, `-leave`, `-setfees`, `-balances`.

Every federation is reached through the adapter chosen by negotiation (links.py).
On start each joined federation reconnects in its own background task, so one unreachable
federation never blocks the others, the hook, or the commands; it shows as `disconnected` meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from fedimint_gw.clock import Clock
from fedimint_gw.config import GatewayConfig
from fedimint_gw.domain.amount import FeeSchedule, Msat
from fedimint_gw.domain.ids import FederationId, ShortChannelId
from fedimint_gw.domain.invite import parse_invite
from fedimint_gw.errors import FederationUnreachable, GatewayError, InvalidInput, NotFound, PaymentRefused
from fedimint_gw.federation.adapter import AdapterFactory
from fedimint_gw.federation.client import Feature, FederationClient, RegistrationResult
from fedimint_gw.federation.notes import NoteWallet
from fedimint_gw.federation.registry import fetch_versions
from fedimint_gw.fedimint.errors import FedimintProtocolError
from fedimint_gw.lightning.node import LightningNode
from fedimint_gw.services.federations.controls import controls_json
from fedimint_gw.services.federations.fedimint_family import (
    FedimintInvite,
    discover_fedimint,
    is_fedimint_major,
    parse_fedimint_invite,
    probe_fedimint,
)
from fedimint_gw.services.federations.links import ConnectionStatus, FederationLinks, LiveFederation
from fedimint_gw.services.htlc_router import HtlcRouter
from fedimint_gw.store import controls as controls_repo
from fedimint_gw.store import federations as repo
from fedimint_gw.store.db import Database

TYPICAL_RECEIVE = Msat(100_000)  # what `fedimint-setfees` checks the fees against (100 sat)


@dataclass(frozen=True)
class GuardianProbe:
    """One round of asking a federation's guardians whether they answer."""

    guardians: int
    answering: int
    threshold: int

    @property
    def reachable(self) -> bool:
        """A threshold of guardians answered (the federation can decide)."""
        return self.answering >= self.threshold


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
        self._clock = clock
        self._session = session
        self._log = log
        self._live: dict[FederationId, LiveFederation] = {}
        self._links = FederationLinks(config, db, node, self._adapters, session, clock, log, self._live)
        self._connect_lock = asyncio.Lock()

    # ----- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        """Reconnect every active federation in the background."""
        for rec in await repo.list_all(self._db.conn, repo.FederationState.ACTIVE):
            self._router.add_scid(rec.scid, rec.federation_id)
            live = LiveFederation(ConnectionStatus.CONNECTING)
            self._live[rec.federation_id] = live
            live.task = asyncio.create_task(self._links.keep_connected(rec))

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
        fedimint = parse_fedimint_invite(invite_code) if isinstance(invite_code, str) else None
        try:
            invite = parse_invite(invite_code) if fedimint is None else fedimint
        except ValueError as exc:
            raise InvalidInput(f"invalid invite code: {exc}") from None
        async with self._connect_lock:
            existing = await repo.get(self._db.conn, invite.federation_id)
            if existing is not None and existing.state is repo.FederationState.ACTIVE:
                live = self._live.get(invite.federation_id)
                if live is not None and live.client is not None:
                    return await self.describe(existing)
            timeout = self._config.request_timeout
            if isinstance(invite, FedimintInvite):
                config, desc, version = await discover_fedimint(
                    invite, self._session, self._adapters, timeout
                )
            else:
                config, desc, version = await self._links.discover(
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
            live = self._live.get(rec.federation_id) or LiveFederation(ConnectionStatus.CONNECTING)
            self._live[rec.federation_id] = live
            self._router.add_scid(rec.scid, rec.federation_id)
            await self._links.open(rec, live, version, desc)
            if live.task is None or live.task.done():
                live.task = asyncio.create_task(self._links.keep_connected(rec, connected=True))
            self._log(
                f"joined federation {rec.federation_id.short()} ({rec.name}) "
                f"with API {version}, scid {rec.scid}",
                "info",
            )
            return await self.describe(rec)

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
        unpaid = await self._unpaid_invoices(fid)
        async with self._db.transaction() as conn:
            await repo.set_state(conn, fid, repo.FederationState.LEFT, self._clock.now())
        self._router.remove_federation(fid)
        live = self._live.pop(fid, None)
        if live is not None:
            if live.task is not None:
                live.task.cancel()
            if live.client is not None and Feature.SELF_REGISTRATION in live.client.features:
                try:  # a 1-second registration replaces ours: wallets stop routing to us
                    await self._links.register(rec, live, ttl=1)
                except GatewayError as exc:
                    self._log(f"could not withdraw the registration: {exc.message}", "warn")
            if live.client is not None:
                await live.client.close()
        self._log(f"left federation {fid.short()} ({rec.name})", "info")
        return {
            "federation_id": fid.hex,
            "left": True,
            "abandoned_ecash_msat": balance.value,
            "unpaid_invoices_dropped": unpaid,
        }

    async def _in_flight(self, fid: FederationId) -> int:
        """Payments that hold or move money. An invoice registration still waiting for its HTLC
        is not one: nothing was paid to it, its HTLC will simply be passed on to lightningd once
        the federation is left (and anyone can register one, so it must not block leaving)."""
        async with self._db.conn.execute(
            "SELECT COUNT(*) FROM payments WHERE (federation_id = ? OR target_federation_id = ?) "
            "AND state NOT IN ('succeeded', 'failed', 'refunded', 'registered')",
            (fid.hex, fid.hex),
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def _unpaid_invoices(self, fid: FederationId) -> int:
        """Invoice registrations of users that can still be paid (they fail once we leave)."""
        async with self._db.conn.execute(
            "SELECT COUNT(*) FROM payments WHERE federation_id = ? AND state = 'registered' "
            "AND COALESCE(json_extract(data_json, '$.invoice_expires_at'), 0) > ?",
            (fid.hex, self._clock.now()),
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
                await self._links.register(updated, live)
            except GatewayError as exc:
                self._log(f"re-registration after fee change failed: {exc.message}", "warn")
        out: dict[str, Any] = {
            "federation_id": fid.hex,
            "fees": {"base_msat": fees.base_msat, "ppm": fees.ppm},
        }
        warning = await self._below_cost(fid, fees, live.client if live else None)
        if warning is not None:
            self._log(warning, "warn")
            out["warning"] = warning
        return out

    async def _below_cost(
        self, fid: FederationId, fees: FeeSchedule, client: FederationClient | None
    ) -> str | None:
        """A warning (the fees are applied anyway) when a typical receive's fee is below what the
        federation is estimated to take for funding it (`ecash_fees(...).spend`)."""
        if client is None:
            return None
        try:
            cost = (await client.ecash_fees(TYPICAL_RECEIVE)).spend
        except GatewayError:
            return None
        charged = fees.fee(TYPICAL_RECEIVE)
        if charged.value >= cost.value:
            return None
        return (
            f"federation {fid.hex[:16]}: a {TYPICAL_RECEIVE.value} msat receive would be charged "
            f"{charged.value} msat, below the ~{cost.value} msat the federation takes for funding "
            "it: such receives lose money (federation_fee_msat in fedimint-payments)"
        )

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
            "controls": controls_json(await controls_repo.get(self._db.conn, rec.federation_id.hex)),
            **({"error": live.error} if live and live.error else {}),
        }

    async def guardian_probe(self, rec: repo.FederationRecord, timeout: float) -> GuardianProbe:
        """Ask every guardian of `rec` for its versions now (as connecting does): how many answer,
        and whether a threshold does. Never raises: an unreadable config counts as none answering."""
        if is_fedimint_major(rec.api_major):  # Fedimint's family: its own WebSocket transport
            try:
                return GuardianProbe(*await probe_fedimint(rec.config, self._links.session, timeout))
            except FedimintProtocolError:
                return GuardianProbe(0, 0, 1)
        factory = self._adapters.get(rec.api_major)
        try:
            if factory is None:
                raise ValueError("no adapter")
            desc = factory.describe(rec.config)
        except (ValueError, KeyError, TypeError):
            return GuardianProbe(0, 0, 1)
        answers = await fetch_versions(self._links.session, desc.guardian_urls, timeout)
        return GuardianProbe(len(desc.guardian_urls), len(answers), desc.threshold)

    def live_view(self, fid: FederationId) -> tuple[frozenset[Feature], RegistrationResult | None] | None:
        """The connected client's features and last registration, None while not connected."""
        live = self._live.get(fid)
        if live is None or live.client is None:
            return None
        return frozenset(live.client.features), live.registration

    def status(self, fid: FederationId) -> ConnectionStatus:
        """The federation's link status (disconnected when not joined)."""
        live = self._live.get(fid)
        return live.status if live else ConnectionStatus.DISCONNECTED

    async def describe_all(self) -> list[dict[str, Any]]:
        return [
            await self.describe(r) for r in await repo.list_all(self._db.conn, repo.FederationState.ACTIVE)
        ]
