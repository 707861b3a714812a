"""`GET /health`: is the gateway alive, and is it ready to take payments?

Live: the event loop answers and the database reads. Ready: live, lightningd answers, and a
threshold of every joined federation's guardians answers a fresh probe (a federation that
cannot decide cannot take payments). The body says which check failed, so an operator or an
orchestrator sees why.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from fedimint_gw.errors import GatewayError
from fedimint_gw.lightning.node import LightningNode
from fedimint_gw.services.ops.snapshot import SnapshotReader
from fedimint_gw.store.db import Database

NODE_TIMEOUT = 5.0


@dataclass(frozen=True)
class HealthReport:
    """The answer of one health check."""

    live: bool
    ready: bool
    checks: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        status = "ready" if self.ready else ("live" if self.live else "down")
        return {"status": status, "live": self.live, "ready": self.ready, "checks": self.checks}


class Health:
    """Runs the checks on demand (nothing cached: each answer is fresh)."""

    def __init__(self, db: Database, node: LightningNode, reader: SnapshotReader) -> None:
        self._db = db
        self._node = node
        self._reader = reader

    async def check(self) -> HealthReport:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.sleep(0)  # one round through the loop
        checks: dict[str, Any] = {"loop": {"ok": True, "lag_ms": round((loop.time() - started) * 1000, 3)}}
        checks["database"] = await self._database()
        checks["lightningd"] = await self._lightningd()
        feds = []
        for f in await self._reader.federations():
            feds.append(
                {
                    "federation_id": f.federation_id,
                    "name": f.name,
                    "ok": f.probe.reachable,
                    "status": f.status,
                    "guardians": f.probe.guardians,
                    "guardians_reachable": f.probe.answering,
                    "threshold": f.probe.threshold,
                }
            )
        checks["federations"] = feds
        live = bool(checks["database"]["ok"])
        ready = live and bool(checks["lightningd"]["ok"]) and all(f["ok"] for f in feds)
        return HealthReport(live, ready, checks)

    async def _database(self) -> dict[str, Any]:
        try:
            async with self._db.conn.execute("SELECT 1") as cur:
                await cur.fetchone()
        except Exception as exc:  # any sqlite or connection error means: not live
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        return {"ok": True}

    async def _lightningd(self) -> dict[str, Any]:
        try:
            info = await asyncio.wait_for(self._node.info(), NODE_TIMEOUT)
        except asyncio.TimeoutError:
            return {"ok": False, "error": f"no answer in {NODE_TIMEOUT:.0f}s"}
        except GatewayError as exc:
            return {"ok": False, "error": exc.message}
        return {"ok": True, "block_height": info.block_height}
