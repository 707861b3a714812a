"""Deciding, without I/O, whether an HTLC belongs to the gateway.

lightningd calls the hook for every HTLC on the node, so the decision for an unrelated one
must be a lookup in memory. The router holds:
- the fake short channel ids assigned to federations (v1 receives arrive as forwards to them):
  a small map, replaced whole on a change (federations are few);
- the payment hashes registered for receives where our node is the payee (v2): a map that
  may hold many entries, so it is updated in place, one entry per change (O(1)), under a
  lock; the stdin thread only reads single entries (`dict.get` is atomic), never iterates.

A registered hash only claims a final-hop HTLC: anything forwarded to another channel, or to
a federation's fake scid, is decided by its scid alone, so nobody can capture an HTLC that
merely passes through this node by registering its hash.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterable
from dataclasses import dataclass

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


class HtlcRouter:
    """Thread-safe: the loop thread writes (under a lock), the stdin thread reads."""

    def __init__(self) -> None:
        self._scids: dict[ShortChannelId, FederationId] = {}  # replaced whole, never mutated
        self._hashes: dict[str, FederationId] = {}  # mutated in place under `_lock`
        self._lock = threading.Lock()

    def classify(self, event: HtlcEvent) -> RouteDecision:
        """A forward is ours only through a fake scid; a final-hop HTLC only by its hash."""
        if event.forward_scid is not None:
            fid = self._scids.get(event.forward_scid)
            if fid is not None:
                return RouteDecision(HtlcOwner.FEDERATION_SCID, fid)
            return RouteDecision(HtlcOwner.UNRELATED)
        fid = self._hashes.get(event.payment_hash)
        if fid is not None:
            return RouteDecision(HtlcOwner.REGISTERED_HASH, fid)
        return RouteDecision(HtlcOwner.UNRELATED)

    def set_scids(self, mapping: Iterable[tuple[ShortChannelId, FederationId]]) -> None:
        with self._lock:
            self._scids = dict(mapping)

    def add_scid(self, scid: ShortChannelId, fid: FederationId) -> None:
        with self._lock:
            self._scids = {**self._scids, scid: fid}

    def remove_federation(self, fid: FederationId) -> None:
        with self._lock:
            self._scids = {s: f for s, f in self._scids.items() if f != fid}
            for h in [h for h, f in self._hashes.items() if f == fid]:
                del self._hashes[h]

    def add_hash(self, payment_hash: str, fid: FederationId) -> None:
        """Register one hash: O(1)."""
        with self._lock:
            self._hashes[payment_hash] = fid

    def add_hashes(self, pairs: Iterable[tuple[str, FederationId]]) -> None:
        """Register many hashes at once (at start): O(n) for n hashes."""
        with self._lock:
            self._hashes.update(pairs)

    def remove_hash(self, payment_hash: str) -> None:
        """Forget one hash: O(1)."""
        with self._lock:
            self._hashes.pop(payment_hash, None)

    def hash_count(self) -> int:
        """How many payment hashes are registered."""
        return len(self._hashes)

    def scid_owner(self, scid: ShortChannelId) -> FederationId | None:
        """The federation a fake scid leads to, if any."""
        return self._scids.get(scid)

    def owned_scids(self) -> set[ShortChannelId]:
        return set(self._scids)
