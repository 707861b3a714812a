"""The operator-facing services in one object: metrics, health and the watcher."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from fedimint_gw.clock import Clock
from fedimint_gw.errors import InvalidInput, NotFound
from fedimint_gw.lightning.node import LightningNode
from fedimint_gw.services.accounting import Accounting
from fedimint_gw.services.events import GatewayEvents
from fedimint_gw.services.federations.controls import FederationControls
from fedimint_gw.services.federations.manager import FederationManager
from fedimint_gw.services.ops.federation_status import FederationStatusService
from fedimint_gw.services.ops.health import Health
from fedimint_gw.services.ops.metrics import Metrics
from fedimint_gw.services.ops.snapshot import PeerLister, SnapshotReader
from fedimint_gw.services.ops.watch import Watcher
from fedimint_gw.store.db import Database


class OpsService:
    """Serves `/metrics` and `/health` and runs the status and limit watcher."""

    def __init__(
        self,
        db: Database,
        node: LightningNode,
        federations: FederationManager,
        peers: PeerLister,
        clock: Clock,
        events: GatewayEvents,
        log: Any,
    ) -> None:
        self._db = db
        self._clock = clock
        self._log = log
        self.reader = SnapshotReader(db, federations, peers, clock)
        self._metrics = Metrics(self.reader)
        self._health = Health(db, node, self.reader)
        self.watcher = Watcher(self.reader, events, log)
        self.status = FederationStatusService(db, federations, self.watcher, clock)
        self._task: asyncio.Task[None] | None = None

    @property
    def registry(self) -> Any:
        """This gateway's prometheus CollectorRegistry."""
        return self._metrics.registry

    async def metrics(self) -> tuple[bytes, str]:
        return await self._metrics.render()

    async def health(self) -> tuple[bool, bool, dict[str, Any]]:
        report = await self._health.check()
        return report.live, report.ready, report.to_json()

    async def set_limits(self, federation_id: object, changes: dict[str, object]) -> dict[str, Any]:
        """`fedimint-setlimits`: persist the controls (all or nothing), then report at once a
        limit the change itself crossed (a failing report is logged; the change stands)."""
        try:
            answer = await FederationControls(self._db, self._clock).set_limits(federation_id, changes)
        except (InvalidInput, NotFound) as exc:
            self._log(f"fedimint-setlimits refused: {exc.message}", "info")
            raise
        try:
            await self.watcher.check()
        except Exception as exc:
            self._log(f"limit check after fedimint-setlimits failed: {exc!r}", "warn")
        return answer

    async def export(self, start: object, end: object, fmt: object) -> dict[str, Any]:
        """`fedimint-export` (same period rule and sums as `fedimint-summary`)."""
        try:
            return await Accounting(self._db).export(start, end, fmt, self._clock.now())
        except InvalidInput as exc:
            self._log(f"fedimint-export refused: {exc.message}", "info")
            raise

    def start(self) -> None:
        """Start the watcher in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self.watcher.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
