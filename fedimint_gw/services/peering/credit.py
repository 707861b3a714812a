"""Credit lines of peer links (docs/peer-protocol.md §6): checked and reserved atomically.

A forward's amount counts against a credit line from the moment its record is stored (it is
`in flight` until it ends). Checking the line and storing the record must therefore be one step:
two forwards checked before either is stored would both fit a line only one of them fits. Each
link has one lock per direction; whoever checks a line holds its lock until the forward's record
(the reservation) is written, or the forward is refused.
"""

from __future__ import annotations

import asyncio
import enum

from fedimint_gw.peer import ledger
from fedimint_gw.services.context import ServiceContext
from fedimint_gw.store import peers as repo


class Direction(enum.Enum):
    """Which way a forward goes on a link, and so which credit line it uses."""

    OUT = "out"  # we forward to the peer: the credit the peer grants us
    IN = "in"  # the peer forwards to us: the credit we grant the peer


class CreditLines:
    """Per-link locks and the credit checks made under them."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._locks: dict[tuple[str, Direction], asyncio.Lock] = {}

    def lock(self, node_id: str, direction: Direction) -> asyncio.Lock:
        """Hold it from the credit check until the forward's record is stored (or refused).
        Order when holding two: an IN lock first, then an OUT lock (a router), never the reverse."""
        key = (node_id, direction)
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def may_borrow(self, node_id: str, amount: int) -> bool:
        """Whether the credit the active peer grants us carries `amount` msat more (call under the
        OUT lock). The peer's record is read here, so a credit change made meanwhile counts."""
        conn = self._ctx.db.conn
        peer = await repo.get(conn, node_id)
        if peer is None or peer.state is not repo.PeerState.ACTIVE:
            return False
        pending = sum((await repo.forwards_in_flight(conn, node_id, Direction.OUT.value)).values())
        return ledger.may_borrow(
            await repo.balance(conn, node_id), pending, amount, peer.peer_credit_limit_msat
        )

    async def may_lend(self, node_id: str, amount: int) -> bool:
        """Whether the credit we grant the active peer carries `amount` msat more (call under the
        IN lock). The peer's record is read here, so a credit cut made meanwhile counts."""
        conn = self._ctx.db.conn
        peer = await repo.get(conn, node_id)
        if peer is None or peer.state is not repo.PeerState.ACTIVE:
            return False
        pending = sum((await repo.forwards_in_flight(conn, node_id, Direction.IN.value)).values())
        return ledger.may_lend(await repo.balance(conn, node_id), pending, amount, peer.credit_limit_msat)
