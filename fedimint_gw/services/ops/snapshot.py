"""One consistent read of what the operator watches: payments, ecash, HTLCs, federations, peers.

Metrics and health are computed from the database and the live links at the moment they are
asked for (no counters kept in memory), so they are exact after a restart and never drift
from `fedimint-payments`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fedimint_gw.clock import Clock
from fedimint_gw.federation.notes import NoteWallet
from fedimint_gw.services.federations.controls import FederationControls
from fedimint_gw.services.federations.manager import FederationManager, GuardianProbe
from fedimint_gw.store import federations as fed_repo
from fedimint_gw.store.controls import FederationMode
from fedimint_gw.store.db import Database

_TOOK = "COALESCE(json_extract(data_json, '$.federation_fee_msat'), 0)"
PROBE_TIMEOUT = 3.0  # seconds a guardian has to answer a probe


@dataclass(frozen=True)
class PaymentGroup:
    """Payments of one kind, state and federation: how many, their amounts and fees."""

    kind: str
    state: str
    federation_id: str
    count: int
    amount_msat: int
    fee_msat: int
    lost_msat: int
    losses: int
    federation_fee_msat: int = 0  # what the federations took for these payments' transactions
    shortfalls: int = 0  # succeeded payments whose federation fee was more than the fee charged
    shortfall_msat: int = 0  # by how much, summed


@dataclass(frozen=True)
class FederationView:
    """One joined federation as metrics and health see it."""

    federation_id: str
    name: str
    status: str
    ecash_msat: int
    probe: GuardianProbe
    max_ecash_msat: int | None
    low_water_msat: int | None
    draining: bool


@dataclass(frozen=True)
class PeerView:
    """One peer link's ledger: positive balance means the peer owes this gateway."""

    node_id: str
    balance_msat: int
    credit_limit_msat: int
    credit_used_msat: int
    peer_credit_limit_msat: int
    peer_credit_used_msat: int


@dataclass(frozen=True)
class OpsSnapshot:
    """Everything one scrape reports."""

    payments: tuple[PaymentGroup, ...]
    latencies_ms: tuple[tuple[str, int], ...]  # (kind, elapsed ms) of finished payments
    htlcs_held: int
    federations: tuple[FederationView, ...]
    peers: tuple[PeerView, ...]


PeerLister = Callable[[], Awaitable[dict[str, Any]]]


class SnapshotReader:
    """Reads an `OpsSnapshot` from the database, the federation links and the peer service."""

    def __init__(self, db: Database, federations: FederationManager, peers: PeerLister, clock: Clock) -> None:
        self._db = db
        self._feds = federations
        self._peers = peers
        self._clock = clock

    async def read(self) -> OpsSnapshot:
        payments, latencies, htlcs = await self._payments()
        return OpsSnapshot(
            payments=payments,
            latencies_ms=latencies,
            htlcs_held=htlcs,
            federations=await self.federations(),
            peers=await self._peer_views(),
        )

    async def _payments(self) -> tuple[tuple[PaymentGroup, ...], tuple[tuple[str, int], ...], int]:
        conn = self._db.conn
        async with conn.execute(
            "SELECT kind, state, COALESCE(federation_id, ''), COUNT(*), SUM(amount_msat), SUM(fee_msat), "
            "SUM(COALESCE(json_extract(data_json, '$.lost_msat'), 0)), "
            "SUM(COALESCE(json_extract(data_json, '$.lost_msat'), 0) > 0), "
            f"SUM({_TOOK}), SUM(state = 'succeeded' AND {_TOOK} > fee_msat), "
            f"SUM(CASE WHEN state = 'succeeded' THEN MAX({_TOOK} - fee_msat, 0) ELSE 0 END) "
            "FROM payments WHERE state != 'registered' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ) as cur:
            groups = tuple(
                PaymentGroup(r[0], r[1], r[2], *(int(v or 0) for v in r[3:])) for r in await cur.fetchall()
            )
        async with conn.execute(
            "SELECT kind, CAST(json_extract(data_json, '$.elapsed_ms') AS INTEGER) FROM payments "
            "WHERE state IN ('succeeded', 'failed', 'refunded') "
            "AND json_extract(data_json, '$.elapsed_ms') IS NOT NULL"
        ) as cur:
            latencies = tuple((str(r[0]), int(r[1])) for r in await cur.fetchall())
        async with conn.execute(
            "SELECT COUNT(*) FROM payments WHERE kind = 'receive' AND htlc_scid IS NOT NULL "
            "AND state IN ('htlc_held', 'funded')"
        ) as cur:
            row = await cur.fetchone()
        return groups, latencies, int(row[0]) if row else 0

    async def federations(self) -> tuple[FederationView, ...]:
        """Every joined federation with its balance, link status and a fresh guardian probe."""
        recs = await fed_repo.list_all(self._db.conn, fed_repo.FederationState.ACTIVE)
        probes = await asyncio.gather(*(self._feds.guardian_probe(r, PROBE_TIMEOUT) for r in recs))
        controls = FederationControls(self._db, self._clock)
        views = []
        for rec, probe in zip(recs, probes, strict=True):
            c = await controls.get(rec.federation_id)
            views.append(
                FederationView(
                    federation_id=rec.federation_id.hex,
                    name=rec.name,
                    status=self._feds.status(rec.federation_id).value,
                    ecash_msat=(
                        await NoteWallet(self._db, rec.federation_id.hex, self._clock).balance()
                    ).value,
                    probe=probe,
                    max_ecash_msat=c.max_ecash_msat,
                    low_water_msat=c.low_water_msat,
                    draining=c.mode is FederationMode.DRAIN,
                )
            )
        return tuple(views)

    async def _peer_views(self) -> tuple[PeerView, ...]:
        listed = (await self._peers())["peers"]
        return tuple(
            PeerView(
                node_id=str(p["node_id"]),
                balance_msat=int(p["balance_msat"]),
                credit_limit_msat=int(p["credit_limit_msat"]),
                credit_used_msat=int(p["credit_used_msat"]),
                peer_credit_limit_msat=int(p["peer_credit_limit_msat"]),
                peer_credit_used_msat=int(p["peer_credit_used_msat"]),
            )
            for p in listed
        )
