"""Peer routes (docs/peer-protocol.md §4, §7): what we announce, and which peer an invoice ends at.

An announcement names our federations and the direct peers we route to. Each peer's last
announcement is kept on its record (links.py, at `hello`), and is all `find_target` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fedimint_gw.domain.ids import ShortChannelId
from fedimint_gw.lightning import bolt11
from fedimint_gw.peer import announce
from fedimint_gw.services.context import ServiceContext
from fedimint_gw.store import peers as repo

ANNOUNCE_TTL = 600


@dataclass(frozen=True)
class PeerTarget:
    """Where a forward goes: the peer to send it to, what it carries, and its final gateway."""

    node_id: str
    amount_msat: int
    destination: str

    @property
    def routed(self) -> bool:
        return self.node_id != self.destination


class PeerRoutes:
    """Announcements to peers, and forward targets found in theirs."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    async def announcement(self, for_node: str) -> dict[str, Any]:
        """Our federations, and the direct peers we route to (never back to `for_node`)."""
        feds = [
            {"federation_id": f["federation_id"], "scid": f["scid"], "api_version": f["api_version"]}
            for f in await self._ctx.federations.describe_all()
        ]
        routes = [
            {"node_id": p.node_id, "scids": sorted(announce.stored(p.announce).scids)}
            for p in await repo.all_peers(self._ctx.db.conn)
            if p.state is repo.PeerState.ACTIVE and p.node_id != for_node
        ][: announce.MAX_ROUTES]
        return {"federations": feds, "routes": routes, "expires_at": self._ctx.clock.now() + ANNOUNCE_TTL}

    async def find_target(
        self, inv: bolt11.Invoice, exclude: str = "", direct_only: bool = False
    ) -> PeerTarget | None:
        """The peer an invoice ends at (directly, or through a router peer), None if none."""
        peers = [
            p
            for p in await repo.all_peers(self._ctx.db.conn)
            if p.state is repo.PeerState.ACTIVE and p.url and p.node_id != exclude
        ]
        if not peers or inv.amount_msat is None:
            return None
        amount = inv.amount_msat
        known = [(p.node_id, announce.stored(p.announce)) for p in peers]  # malformed: empty
        for route in inv.route_hints:
            hop = route[-1]
            node = hop.pubkey.hex()
            scid = str(ShortChannelId.from_int(hop.short_channel_id))
            forward = amount + hop.fee_base_msat + amount * hop.fee_proportional_millionths // 1_000_000
            for peer, ann in known:
                if peer == node and scid in ann.scids:
                    return PeerTarget(peer, forward, node)
            for peer, ann in [] if direct_only else known:
                if any(r.node_id == node and scid in r.scids for r in ann.routes):
                    return PeerTarget(peer, forward, node)
        payee = inv.payee.hex()
        for peer, _ann in known:
            if peer == payee:
                return PeerTarget(peer, amount, payee)
        for peer, ann in [] if direct_only else known:
            if any(r.node_id == payee for r in ann.routes):
                return PeerTarget(peer, amount, payee)
        return None
