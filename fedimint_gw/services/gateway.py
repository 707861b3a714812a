"""The gateway core: owns the database, the node, the router and the flows.

The plugin file builds one `Gateway` at `init` and calls its coroutines from the bridge;
tests build it the same way with a fake node.
"""

from __future__ import annotations

from typing import Any

from fedimint_gw import __version__
from fedimint_gw.clock import Clock
from fedimint_gw.config import GatewayConfig
from fedimint_gw.domain.htlc import TEMPORARY_NODE_FAILURE, HtlcEvent, answer_continue, answer_fail
from fedimint_gw.errors import NotReady
from fedimint_gw.lightning.node import LightningNode, NodeInfo
from fedimint_gw.services.htlc_router import HtlcOwner, HtlcRouter
from fedimint_gw.store import federations as fed_repo
from fedimint_gw.store.db import Database

Logger = Any  # Callable[[str, str], None]; kept loose so tests can pass a list's append


class Gateway:
    """One gateway: the services behind every RPC method, hook and HTTP endpoint."""

    def __init__(self, config: GatewayConfig, node: LightningNode, clock: Clock, log: Logger) -> None:
        self.config = config
        self.node = node
        self.clock = clock
        self.log = log
        self.router = HtlcRouter()
        self._db: Database | None = None
        self._node_info: NodeInfo | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            raise NotReady("the gateway is still starting (database not open yet)")
        return self._db

    async def start(self) -> None:
        """Open and migrate the database, load federations into the router."""
        self._db = await Database.open(self.config.db_path)
        active = await fed_repo.list_all(self._db.conn, fed_repo.FederationState.ACTIVE)
        self.router.set_scids((rec.scid, rec.federation_id) for rec in active)
        self.log(
            f"fedimint-gw {__version__} started: database {self.config.db_path} "
            f"(schema {await self._db.schema_version()}), {len(active)} federation(s)",
            "info",
        )

    async def stop(self) -> None:
        """Close everything; safe to call more than once."""
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def node_info(self) -> NodeInfo:
        """The node's identity (cached) with a fresh block height."""
        info = await self.node.info()
        self._node_info = info
        return info

    async def info(self) -> dict[str, Any]:
        """The `fedimint-info` result."""
        node = await self.node_info()
        feds = await fed_repo.list_all(self.db.conn, fed_repo.FederationState.ACTIVE)
        return {
            "version": __version__,
            "node_id": node.node_id,
            "network": node.network,
            "block_height": node.block_height,
            "lightning_version": node.version,
            "api_url": self.config.api_url,
            "database": self.config.db_path,
            "schema_version": await self.db.schema_version(),
            "default_fees": {
                "base_msat": self.config.default_fees.base_msat,
                "ppm": self.config.default_fees.ppm,
            },
            "supported_api_versions": [],
            "peers": [],
            "federations": [
                {
                    "federation_id": rec.federation_id.hex,
                    "name": rec.name,
                    "api_version": f"{rec.api_major}.{rec.api_minor}",
                    "scid": str(rec.scid),
                }
                for rec in feds
            ],
        }

    async def handle_htlc(self, event: HtlcEvent) -> dict[str, Any]:
        """Answer an HTLC the router said is ours (unrelated ones never get here)."""
        decision = self.router.classify(event)
        if decision.owner is HtlcOwner.UNRELATED:
            return answer_continue()
        # The receive flows land with the payments issue; until then an HTLC for one of our
        # fake scids cannot be honoured and is failed back at once rather than held.
        self.log(f"HTLC {event.key} for {decision.owner.value}: no receive flow yet, failing", "warn")
        return answer_fail(TEMPORARY_NODE_FAILURE)
