"""What every payment service is built from: one frozen bundle instead of six arguments."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fedimint_gw.clock import Clock
from fedimint_gw.config import GatewayConfig
from fedimint_gw.domain.payment import PaymentState
from fedimint_gw.lightning.node import LightningNode
from fedimint_gw.services.federations.manager import FederationManager
from fedimint_gw.services.htlc_router import HtlcRouter
from fedimint_gw.store import payments as repo
from fedimint_gw.store.db import Database


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

    async def advance(
        self, rec: repo.PaymentRecord, state: PaymentState, **changes: Any
    ) -> repo.PaymentRecord:
        """Persist `rec` moved to `state` (with `changes`); terminal states record the elapsed time."""

        data = dict(changes.pop("data", {}))
        if state.terminal and "started" in rec.data:
            data["elapsed_ms"] = int((time.time() - float(rec.data["started"])) * 1000)
        new = rec.advance(state, self.clock.now(), data=data, **changes)
        async with self.db.transaction() as conn:
            await repo.save(conn, new)
        return new
