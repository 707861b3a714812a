"""What every payment service is built from: one frozen bundle instead of six arguments."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fedimint_gw.clock import Clock
from fedimint_gw.config import GatewayConfig
from fedimint_gw.domain.payment import PaymentState
from fedimint_gw.lightning.node import LightningNode
from fedimint_gw.services.events import (
    LOSS_REPORTED,
    PAYMENT_FINISHED,
    GatewayEvents,
    NoEvents,
    lost_msat,
    payment_event,
)
from fedimint_gw.services.federations.controls import CapReservations, FederationControls
from fedimint_gw.services.federations.manager import FederationManager
from fedimint_gw.services.htlc_router import HtlcRouter
from fedimint_gw.store import payments as repo
from fedimint_gw.store.db import Database

if TYPE_CHECKING:
    import aiosqlite


@dataclass(frozen=True)
class ServiceContext:
    """The gateway's shared parts, handed to each flow service."""

    config: GatewayConfig
    db: Database
    node: LightningNode
    federations: FederationManager
    router: HtlcRouter
    clock: Clock
    log: Any  # Callable[[str, str], None]
    events: GatewayEvents = field(default_factory=NoEvents)
    reservations: CapReservations = field(default_factory=CapReservations)

    @property
    def controls(self) -> FederationControls:
        """The operator's per-federation controls (read from the database at each check)."""
        return FederationControls(self.db, self.clock, self.reservations)

    async def advance(
        self, rec: repo.PaymentRecord, state: PaymentState, **changes: Any
    ) -> repo.PaymentRecord:
        """Persist `rec` moved to `state` (with `changes`); terminal states record the elapsed time."""
        new = self.moved(rec, state, **changes)
        await self.save_moves((rec, new))
        return new

    def moved(self, rec: repo.PaymentRecord, state: PaymentState, **changes: Any) -> repo.PaymentRecord:
        """`rec` moved to `state` (with `changes`), not yet written: a terminal state gets the
        elapsed time since the record's start."""
        data = dict(changes.pop("data", {}))
        if state.terminal and "started" in rec.data:
            data["elapsed_ms"] = int((time.time() - float(rec.data["started"])) * 1000)
        return rec.advance(state, self.clock.now(), data=data, **changes)

    async def save_moves(
        self,
        *moves: tuple[repo.PaymentRecord, repo.PaymentRecord],
        with_writes: Callable[[aiosqlite.Connection], Awaitable[None]] | None = None,
    ) -> None:
        """Write each (old, new) pair's new record in one transaction (all or none), with
        `with_writes` (other tables' rows of the same step) in it too, then tell the events of
        those that just finished (and of any loss they report)."""
        async with self.db.transaction() as conn:
            if with_writes is not None:
                await with_writes(conn)
            for _old, new in moves:
                await repo.save(conn, new)
        self.announce(*moves)

    def announce(self, *moves: tuple[repo.PaymentRecord, repo.PaymentRecord]) -> None:
        """Tell the events of the written moves that finished a payment (and of any loss)."""
        for old, new in moves:
            if new.state.terminal and not old.state.terminal:
                self.events.emit(PAYMENT_FINISHED, payment_event(new))
                if lost_msat(new):
                    self.events.emit(LOSS_REPORTED, {**payment_event(new), "lost_msat": lost_msat(new)})
