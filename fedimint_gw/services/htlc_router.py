"""Deciding, without I/O, whether an HTLC belongs to the gateway.

lightningd calls the hook for every HTLC on the node, so the decision for an unrelated one
must be a lookup in memory. The router holds an immutable snapshot (replaced whole, so the
stdin thread can read it while the loop thread updates it) of:
- the fake short channel ids assigned to federations (v1 receives arrive as forwards to them);
- the payment hashes registered for receives where our node is the payee (v2).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from fedimint_gw.domain.htlc import HtlcEvent
from fedimint_gw.domain.ids import FederationId, ShortChannelId


class HtlcOwner(enum.Enum):
    """Who handles an HTLC."""

    UNRELATED = "unrelated"
    FEDERATION_SCID = "federation_scid"
    REGISTERED_HASH = "registered_hash"


@dataclass(frozen=True)
class RouteDecision:
    """The router's answer: the owner and, when known, the federation."""

    owner: HtlcOwner
    federation_id: FederationId | None = None


@dataclass(frozen=True)
class _Snapshot:
    scids: dict[ShortChannelId, FederationId] = field(default_factory=dict)
    hashes: dict[str, FederationId] = field(default_factory=dict)


class HtlcRouter:
    """Thread-safe by replacement: readers see one whole snapshot, never a half update."""

    def __init__(self) -> None:
        self._snap = _Snapshot()

    def classify(self, event: HtlcEvent) -> RouteDecision:
        """Registered payment hashes first (as gatewayd does), then fake scids."""
        snap = self._snap
        fid = snap.hashes.get(event.payment_hash)
        if fid is not None:
            return RouteDecision(HtlcOwner.REGISTERED_HASH, fid)
        if event.forward_scid is not None:
            fid = snap.scids.get(event.forward_scid)
            if fid is not None:
                return RouteDecision(HtlcOwner.FEDERATION_SCID, fid)
        return RouteDecision(HtlcOwner.UNRELATED)

    def set_scids(self, mapping: Iterable[tuple[ShortChannelId, FederationId]]) -> None:
        self._snap = _Snapshot(dict(mapping), self._snap.hashes)

    def add_scid(self, scid: ShortChannelId, fid: FederationId) -> None:
        self._snap = _Snapshot({**self._snap.scids, scid: fid}, self._snap.hashes)

    def remove_federation(self, fid: FederationId) -> None:
        snap = self._snap
        self._snap = _Snapshot(
            {s: f for s, f in snap.scids.items() if f != fid},
            {h: f for h, f in snap.hashes.items() if f != fid},
        )

    def add_hash(self, payment_hash: str, fid: FederationId) -> None:
        self._snap = _Snapshot(self._snap.scids, {**self._snap.hashes, payment_hash: fid})

    def remove_hash(self, payment_hash: str) -> None:
        snap = self._snap
        self._snap = _Snapshot(snap.scids, {h: f for h, f in snap.hashes.items() if h != payment_hash})

    def scid_owner(self, scid: ShortChannelId) -> FederationId | None:
        """The federation a fake scid leads to, if any."""
        return self._snap.scids.get(scid)

    def owned_scids(self) -> set[ShortChannelId]:
        return set(self._snap.scids)
