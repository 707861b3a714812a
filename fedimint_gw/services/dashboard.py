"""The dashboard's data: one read-only snapshot of the gateway (`http/dashboard.py` draws it).

Nothing here writes or calls a federation: it reads the database and asks lightningd for its
identity and liquidity. When lightningd does not answer, the page still renders, with the
node fields marked unavailable and the health banner saying so.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from fedimint_gw import __version__
from fedimint_gw.clock import Clock
from fedimint_gw.config import GatewayConfig
from fedimint_gw.domain.payment import PaymentState
from fedimint_gw.errors import GatewayError
from fedimint_gw.http.dashboard_model import (
    DashboardView,
    DayPoint,
    FederationRow,
    Health,
    HealthState,
    LedgerEntryRow,
    PaymentRow,
    PeerRow,
)
from fedimint_gw.lightning.node import LightningNode, Liquidity, NodeInfo
from fedimint_gw.services.federations.manager import FederationManager
from fedimint_gw.services.peering.links import PeerService
from fedimint_gw.store import dashboard as queries
from fedimint_gw.store import payments as pay_repo
from fedimint_gw.store.db import Database

RECENT_PAYMENTS = 25
LEDGER_ENTRIES = 10
CHART_DAYS = 14
STUCK_AFTER = 600  # seconds without progress before an open payment counts as a problem
DAY = 86_400


class DashboardService:
    """Builds `DashboardView`s from the database, the federations, the peers and the node."""

    def __init__(
        self,
        config: GatewayConfig,
        db: Database,
        node: LightningNode,
        federations: FederationManager,
        peers: PeerService,
        clock: Clock,
        log: Callable[[str, str], None],
        restored_from: int | None = None,
    ) -> None:
        self._config = config
        self._db = db
        self._node = node
        self._federations = federations
        self._peers = peers
        self._clock = clock
        self._log = log
        self._restored_from = restored_from

    async def dashboard(self) -> DashboardView:
        """The whole page's data, taken now."""
        now = self._clock.now()
        node, liquidity, node_problem = await self._node_state()
        federations = tuple(
            self._federation_row(f, liquidity) for f in await self._federations.describe_all()
        )
        peers = tuple([await self._peer_row(p) for p in (await self._peers.list_peers())["peers"]])
        conn = self._db.conn
        payments = tuple(_payment_row(r) for r in await queries.recent_payments(conn, RECENT_PAYMENTS))
        start = (now // DAY - (CHART_DAYS - 1)) * DAY
        days = _days(await pay_repo.between(conn, start, now + 1), start)
        open_payments = await queries.open_payments(conn)
        problems = [node_problem] if node_problem else []
        for fed in federations:
            if fed.status != "connected":
                problems.append(
                    f"federation {fed.name} is {fed.status}" + (f": {fed.error}" if fed.error else "")
                )
        problems += [f"peer {p.node_id[:16]} is unreachable" for p in peers if p.status == "unreachable"]
        problems += [
            f"peer {p.node_id[:16]} ledger: {p.ledger_status}" for p in peers if p.ledger_status == "mismatch"
        ]
        stuck = [pid for pid, updated in open_payments if now - updated > STUCK_AFTER]
        if stuck:
            problems.append(f"{len(stuck)} payment(s) unfinished for over {STUCK_AFTER // 60} minutes")
        state = HealthState.OK
        if problems:
            state = HealthState.DOWN if node_problem else HealthState.DEGRADED
        health = Health(
            state=state,
            problems=tuple(problems),
            version=__version__,
            node_id=node.node_id if node else "",
            alias=node.alias if node else "",
            network=node.network if node else self._config.network,
            block_height=node.block_height if node else None,
            lightning_version=node.version if node else "",
            spendable_msat=liquidity.spendable.value if liquidity else None,
            receivable_msat=liquidity.receivable.value if liquidity else None,
            database=self._config.db_path,
            schema_version=await self._db.schema_version(),
            federations_connected=sum(1 for f in federations if f.status == "connected"),
            federations_total=len(federations),
            peers_active=sum(1 for p in peers if p.status == "active"),
            payments_in_flight=len(open_payments),
            restored_from=self._restored_from,
        )
        return DashboardView(now, health, federations, payments, peers, days)

    async def _node_state(self) -> tuple[NodeInfo | None, Liquidity | None, str]:
        try:
            return await self._node.info(), await self._node.liquidity(), ""
        except (GatewayError, OSError, ValueError, KeyError) as exc:  # pyln's RpcError is a ValueError
            self._log(f"dashboard: lightningd did not answer: {exc}", "info")
            return None, None, "lightningd does not answer the gateway's RPC calls"

    def _federation_row(self, fed: dict[str, Any], liquidity: Liquidity | None) -> FederationRow:
        ecash = int(fed["balance_msat"])
        sends = f"{liquidity.spendable.value:,} msat" if liquidity else "unknown"
        limits = (
            f"receives up to {ecash:,} msat (ecash); sends up to {sends} (Lightning); "
            f"CLTV margin {self._config.cltv_margin} blocks"
        )
        return FederationRow(
            federation_id=str(fed["federation_id"]),
            name=str(fed["name"]),
            protocol=str(fed["adapter"]) or "not connected",
            api_version=str(fed["api_version"]),
            scid=str(fed["scid"]),
            ecash_msat=ecash,
            fee_base_msat=int(fed["fees"]["base_msat"]),
            fee_ppm=int(fed["fees"]["ppm"]),
            limits=limits,
            status=str(fed["status"]),
            registration=str(fed["registration"]),
            error=str(fed.get("error", "")),
        )

    async def _peer_row(self, peer: dict[str, Any]) -> PeerRow:
        node_id = str(peer["node_id"])
        entries = await queries.ledger_entries(self._db.conn, node_id, LEDGER_ENTRIES)
        return PeerRow(
            node_id=node_id,
            url=str(peer.get("url") or ""),
            status=str(peer["status"]),
            balance_msat=int(peer["balance_msat"]),
            credit_limit_msat=int(peer["credit_limit_msat"]),
            credit_used_msat=int(peer["credit_used_msat"]),
            peer_credit_limit_msat=int(peer["peer_credit_limit_msat"]),
            peer_credit_used_msat=int(peer["peer_credit_used_msat"]),
            ledger_status=str(peer["ledger_status"]),
            last_seen=peer.get("last_seen"),
            entries=tuple(LedgerEntryRow(e, d, t) for e, d, t in entries),
        )


def _payment_row(r: pay_repo.PaymentRecord) -> PaymentRow:
    elapsed = r.data.get("elapsed_ms")
    return PaymentRow(
        payment_id=r.payment_id,
        kind=r.kind.value,
        state=r.state.value,
        federation_id=r.federation_id or "",
        amount_msat=r.amount_msat,
        fee_msat=r.fee_msat,
        created_at=r.created_at,
        elapsed_ms=int(elapsed) if isinstance(elapsed, (int, float)) else None,
        error=r.error or "",
    )


def _days(records: list[pay_repo.PaymentRecord], start: int) -> tuple[DayPoint, ...]:
    """One point per UTC day from `start` for CHART_DAYS days (days without payments are zero)."""
    points = []
    for i in range(CHART_DAYS):
        lo, hi = start + i * DAY, start + (i + 1) * DAY
        ok = [r for r in records if lo <= r.created_at < hi and r.state is PaymentState.SUCCEEDED]
        latencies = sorted(int(r.data["elapsed_ms"]) for r in ok if isinstance(r.data.get("elapsed_ms"), int))
        day = datetime.datetime.fromtimestamp(lo, tz=datetime.timezone.utc).strftime("%Y-%m-%d")
        points.append(
            DayPoint(
                day=day,
                count=len(ok),
                volume_msat=sum(r.amount_msat for r in ok),
                latency_ms_p50=_pct(latencies, 0.5),
                latency_ms_p90=_pct(latencies, 0.9),
            )
        )
    return tuple(points)


def _pct(ordered: list[int], q: float) -> int | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]
