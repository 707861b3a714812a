"""The gateway core: owns the database, the node, the router, the federations and the flows.

The plugin file builds one `Gateway` at `init` and calls its coroutines from the bridge;
tests build it the same way with a fake node and their own adapters.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from collections.abc import Mapping
from typing import Any

import aiohttp

from fedimint_gw import __version__
from fedimint_gw.clock import Clock
from fedimint_gw.config import GatewayConfig
from fedimint_gw.domain import parse
from fedimint_gw.domain.htlc import HtlcEvent, answer_continue
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.errors import AlreadyExists, GatewayError, InvalidInput, LeaveUnanswered, NotReady
from fedimint_gw.federation.adapter import AdapterFactory
from fedimint_gw.federation.builtin import builtin_adapters
from fedimint_gw.federation.registry import discover_adapters
from fedimint_gw.http.app import HttpServer, create_app
from fedimint_gw.http.dashboard import create_dashboard_app
from fedimint_gw.http.federation_status import add_federation_status_route
from fedimint_gw.http.limits import HttpLimits
from fedimint_gw.http.ops import create_ops_app
from fedimint_gw.lightning.node import LightningNode, NodeInfo
from fedimint_gw.peer.wire import PeerAnswer
from fedimint_gw.services.context import ServiceContext
from fedimint_gw.services.dashboard import DashboardService
from fedimint_gw.services.dev import DevTools
from fedimint_gw.services.events import GatewayEvents, NoEvents
from fedimint_gw.services.federations.manager import FederationManager
from fedimint_gw.services.federations.treasury import Treasury
from fedimint_gw.services.htlc_router import HtlcOwner, HtlcRouter
from fedimint_gw.services.liquidity.exchange import ExchangeService
from fedimint_gw.services.liquidity.migration import MigrationService
from fedimint_gw.services.ops.service import OpsService
from fedimint_gw.services.payments.invoices import prune_expired
from fedimint_gw.services.payments.receive import IncomingService
from fedimint_gw.services.payments.send import OutgoingService
from fedimint_gw.services.payments.swap import SwapService
from fedimint_gw.services.peer_api import PeerApi
from fedimint_gw.services.peering.forwards import ForwardService
from fedimint_gw.services.peering.links import PeerService
from fedimint_gw.services.peering.settlement import SettleService
from fedimint_gw.services.public_api import PublicService
from fedimint_gw.services.records import Records
from fedimint_gw.store import payments as pay_repo
from fedimint_gw.store.backup import take_restore_marker, write_backup
from fedimint_gw.store.db import Database

Logger = Any  # Callable[[str, str], None]
RECONCILE_GRACE = 10.0  # seconds after start before a receive's missing HTLC counts as gone
PRUNE_INTERVAL = 300.0  # seconds between two prunings of expired invoice registrations


class Gateway:
    """One gateway: the services behind every RPC method, hook and HTTP endpoint."""

    def __init__(
        self,
        config: GatewayConfig,
        node: LightningNode,
        clock: Clock,
        log: Logger,
        adapters: Mapping[int, AdapterFactory] | None = None,
        events: GatewayEvents | None = None,
    ) -> None:
        self.config = config
        self.events: GatewayEvents = events if events is not None else NoEvents()
        self._ops: OpsService | None = None
        self._ops_http: HttpServer | None = None
        self.node = node
        self.clock = clock
        self.log = log
        self.router = HtlcRouter()
        self._adapters = adapters
        self._db: Database | None = None
        self._session: aiohttp.ClientSession | None = None
        self._federations: FederationManager | None = None
        self._incoming: IncomingService | None = None
        self._outgoing: OutgoingService | None = None
        self._http: HttpServer | None = None
        self._reconcile: asyncio.Task[None] | None = None
        self._pruner: asyncio.Task[None] | None = None
        self._peers: PeerService | None = None
        self._forwards: ForwardService | None = None
        self._settle: SettleService | None = None
        self._peer_api: PeerApi | None = None
        self._exchanges: ExchangeService | None = None
        self._migrations: MigrationService | None = None
        self._public: PublicService | None = None
        self.dashboard_server: HttpServer | None = None  # fedimint-gw-dashboard-bind; .port once started
        self.restored_from: int | None = None  # set at start when the database is a restored backup
        self._stopping = False
        self._dev: DevTools | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            raise NotReady("the gateway is still starting (database not open yet)")
        return self._db

    @property
    def federations(self) -> FederationManager:
        if self._federations is None:
            raise NotReady("the gateway is still starting")
        return self._federations

    @property
    def ops(self) -> OpsService:
        """Metrics, health and the status and limit watcher."""
        if self._ops is None:
            raise NotReady("the gateway is still starting")
        return self._ops

    @property
    def ops_port(self) -> int | None:
        """The port `/metrics` and `/health` listen on (None when off)."""
        return self._ops_http.port if self._ops_http is not None else None

    @property
    def public(self) -> PublicService:
        """The public API wallets call (served over HTTP; the bench calls it directly)."""
        if self._public is None:
            raise NotReady("the gateway is still starting")
        return self._public

    async def start(self) -> None:
        """Check lightningd's payer, open and migrate the database, then reconnect federations
        in the background. Refuses to start (InvalidInput) without `xpay-slow-mode`."""
        if not await self.node.xpay_waits_for_all_parts():
            raise InvalidInput(
                "set xpay-slow-mode=true in lightningd's config: without it xpay reports a payment "
                "failed while some of its parts are still in flight, and the gateway would refund "
                "users whose payments then succeed"
            )
        self._db = await Database.open(self.config.db_path)
        taken_at = self.restored_from = await take_restore_marker(self._db)
        if taken_at is not None:
            self.log(
                f"this database was restored from a backup taken at {taken_at} (unix time): ecash the "
                "gateway spent since then is refused by its federation and retired when met; see "
                "docs/operator-guide.md, 'Backup and restore'",
                "warn",
            )
        self._session = aiohttp.ClientSession()
        adapters = (
            self._adapters
            if self._adapters is not None
            else discover_adapters(builtin_adapters(), log=self.log)
        )
        self._federations = FederationManager(
            self.config, self._db, self.node, self.router, adapters, self._session, self.clock, self.log
        )
        await self._federations.start()
        ctx = ServiceContext(
            self.config,
            self._db,
            self.node,
            self._federations,
            self.router,
            self.clock,
            self.log,
            self.events,
        )
        self._incoming = IncomingService(ctx)
        self._peers = PeerService(ctx, self._session)
        await self._peers.start()
        self._settle = SettleService(ctx, self._peers)
        swaps = SwapService(ctx)
        self._forwards = ForwardService(ctx, self._peers, swaps, self._settle.maybe_settle)
        self._exchanges = ExchangeService(ctx, swaps)
        self._migrations = MigrationService(ctx, self._peers)
        self._peer_api = PeerApi(self._peers, self._forwards, self._settle, self._exchanges, self.log)
        self._outgoing = OutgoingService(ctx, self._forwards)
        self._public = PublicService(ctx, self._outgoing, self)
        await prune_expired(ctx)  # before loading: start-up work grows with live registrations only
        await swaps.release_orphans()  # before loading too: a released receive is live again
        self.router.add_hashes(
            (payment_hash, FederationId(fid))
            for payment_hash, fid in await pay_repo.registered_hashes(self._db.conn)
        )
        await self._outgoing.resume()
        await self._forwards.resume()
        await self._settle.resume()
        await self._exchanges.resume()
        await self._migrations.resume()
        self._reconcile = asyncio.create_task(self._incoming.reconcile(RECONCILE_GRACE))
        self._pruner = asyncio.create_task(self._prune_forever(ctx))
        self._ops = OpsService(
            self._db, self.node, self._federations, self._peers.list_peers, self.clock, self.events, self.log
        )
        self._ops.start()
        if self.config.metrics_bind is not None:  # monitoring must never keep payments from running
            bind = self.config.metrics_bind
            ops_http = HttpServer(create_ops_app(self._ops, self.log), bind.host, bind.port)
            try:
                await ops_http.start()
                self._ops_http = ops_http
            except OSError as exc:
                await ops_http.stop()
                self.log(f"no /metrics and /health: cannot listen on {bind.host}:{bind.port}: {exc}", "warn")
        if self.config.api_bind is not None:
            app = create_app(self._public, self.log, self._http_limits(), lnv2=self._public)
            add_federation_status_route(app, self._ops.status)
            self._http = HttpServer(app, self.config.api_bind.host, self.config.api_bind.port)
            await self._http.start()
        await self._start_dashboard()
        self.log(
            f"fedimint-gw {__version__} started: database {self.config.db_path} "
            f"(schema {await self._db.schema_version()}), adapters for API majors {sorted(adapters)}",
            "info",
        )

    async def _start_dashboard(self) -> None:
        """The read-only dashboard on its own listener, when `fedimint-gw-dashboard-bind` is set."""
        bind = self.config.dashboard_bind
        if bind is None or self._federations is None or self._peers is None or self._db is None:
            return
        source = DashboardService(
            self.config,
            self._db,
            self.node,
            self._federations,
            self._peers,
            self.clock,
            self.log,
            self.restored_from,
        )
        server = HttpServer(
            create_dashboard_app(source, self.config.dashboard_token, self.log), bind.host, bind.port
        )
        try:
            await server.start()
        except OSError as exc:  # a view must not keep the gateway from serving payments
            await server.stop()
            self.log(
                f"dashboard cannot listen on {bind.host}:{bind.port} ({exc}); running without it", "warn"
            )
            return
        self.dashboard_server = server
        auth = "token required" if self.config.dashboard_token else "loopback only, no token"
        self.log(f"dashboard on http://{bind.host}:{server.port}/ ({auth})", "info")

    async def stop(self) -> None:
        """Stop the flows first, then close everything; safe to call more than once. Held HTLCs
        get no answer (lightningd replays them after its restart), and no flow ever runs on a
        closed HTTP session or database."""
        self._stopping = True
        if self.dashboard_server is not None:
            await self.dashboard_server.stop()
            self.dashboard_server = None
        for task in (self._reconcile, self._pruner):
            if task is not None:
                task.cancel()
        self._reconcile = self._pruner = None
        if self._http is not None:
            await self._http.stop()
            self._http = None
        for flows in (self._incoming, self._outgoing):
            if flows is not None:
                await flows.stop()
        if self._ops_http is not None:
            await self._ops_http.stop()
            self._ops_http = None
        if self._ops is not None:
            await self._ops.stop()
            self._ops = None
        for service in (self._peers, self._forwards, self._settle, self._exchanges, self._migrations):
            if service is not None:
                await service.stop()
        self._peers = self._forwards = self._settle = self._peer_api = None
        self._exchanges = self._migrations = None
        if self._federations is not None:
            await self._federations.stop()
            self._federations = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._db is not None:
            await self._db.close()
            self._db = None

    def _http_limits(self) -> HttpLimits:
        rate = self.config.api_rate_limit
        return HttpLimits(rate_per_second=float(rate) if rate > 0 else 0.0, burst=self.config.api_burst)

    async def _prune_forever(self, ctx: ServiceContext) -> None:
        """Delete expired invoice registrations every `PRUNE_INTERVAL` seconds."""
        while True:
            await asyncio.sleep(PRUNE_INTERVAL)
            try:
                pruned = await prune_expired(ctx)
            except (GatewayError, sqlite3.Error) as exc:
                self.log(f"pruning expired invoice registrations failed: {exc}", "warn")
                continue
            if pruned:
                self.log(f"pruned {pruned} expired invoice registration(s)", "info")

    async def node_info(self) -> NodeInfo:
        return await self.node.info()

    async def info(self) -> dict[str, Any]:
        """The `fedimint-info` result."""
        node = await self.node_info()
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
            "supported_api_versions": self.federations.supported_versions(),
            "peers": await self.peers.summary(),
            "federations": await self.federations.describe_all(),
        }

    async def payments(
        self, federation_id: object, state: object, limit: object, before: object
    ) -> dict[str, Any]:
        """The `fedimint-payments` result."""
        return await Records(self.db).payments(federation_id, state, limit, before)

    async def summary(self, start: object, end: object) -> dict[str, Any]:
        """The `fedimint-summary` result."""
        return await Records(self.db).summary(start, end, self.clock.now())

    async def export(self, start: object, end: object, fmt: object) -> dict[str, Any]:
        """The `fedimint-export` result (same period rule and sums as `fedimint-summary`)."""
        return await self.ops.export(start, end, fmt)

    async def balances(self) -> dict[str, Any]:
        """The `fedimint-balances` result: Lightning liquidity and ecash per federation."""
        return await self._treasury().balances()

    async def set_fees(
        self, federation_id: str, base_msat: object, ppm: object, to_federation: object = None
    ) -> dict[str, Any]:
        """Validate and apply `fedimint-setfees` (a federation's fees, or a swap pair's)."""
        fid = parse.federation_id(federation_id)
        fees = parse.fees(base_msat, ppm)
        target = None if parse.absent(to_federation) else parse.federation_id(to_federation, "to_federation")
        if target is None:
            return await self.federations.set_fees(fid, fees)
        return await self.federations.set_pair_fees(fid, target, fees)

    async def set_limits(self, federation_id: object, changes: dict[str, object]) -> dict[str, Any]:
        """`fedimint-setlimits`: validate and persist a federation's controls (all or nothing)."""
        return await self.ops.set_limits(federation_id, changes)

    async def ecash_send(
        self, federation_id: str, amount_msat: object, request_id: object = None
    ) -> dict[str, Any]:
        """`fedimint-ecash-send` (see `Treasury.ecash_send`)."""
        return await self._treasury().ecash_send(federation_id, amount_msat, request_id)

    async def ecash_receive(self, federation_id: str, notes: object) -> dict[str, Any]:
        """`fedimint-ecash-receive` (see `Treasury.ecash_receive`)."""
        return await self._treasury().ecash_receive(federation_id, notes)

    def _treasury(self) -> Treasury:
        return Treasury(self)

    async def leave(self, federation_id: str, force: object) -> dict[str, Any]:
        """`fedimint-leave`: stop serving a federation (`force`: true or false)."""
        fid, forced = parse.federation_id(federation_id), parse.boolean(force, "force")
        return await self.federations.leave(fid, forced)

    # ----- peer gateways (docs/peer-protocol.md) ---------------------------------------
    @property
    def peers(self) -> PeerService:
        if self._peers is None:
            raise NotReady("the gateway is still starting")
        return self._peers

    async def peer_add(self, node_id: object, url: object, credit_limit_msat: object) -> dict[str, Any]:
        """`fedimint-peer-add`: add or update a peer and say hello."""
        peer, address = parse.node_id(node_id), parse.url(url)
        limit = (
            None
            if parse.absent(credit_limit_msat)
            else parse.msat(credit_limit_msat, "credit_limit_msat").value
        )
        return await self.peers.add(peer, address, limit)

    async def peer_list(self) -> dict[str, Any]:
        """`fedimint-peer-list`."""
        return await self.peers.list_peers()

    async def peer_remove(self, node_id: object) -> dict[str, Any]:
        """`fedimint-peer-remove`."""
        peer = parse.node_id(node_id)
        return await self.peers.remove(peer)

    async def peer_settle(self, node_id: object, amount_msat: object) -> dict[str, Any]:
        """`fedimint-peer-settle`: pay the peer what this gateway owes it, over Lightning."""
        if self._settle is None:
            raise NotReady("the gateway is still starting")
        amount = None if parse.absent(amount_msat) else parse.msat(amount_msat, "amount_msat", low=1).value
        return await self._settle.settle(parse.node_id(node_id), amount)

    @property
    def migrations(self) -> MigrationService:
        """`fedimint-migrate` (the plugin calls `migrations.migrate`)."""
        if self._migrations is None:
            raise NotReady("the gateway is still starting")
        return self._migrations

    async def peer_message(self, message: str, headers: Mapping[str, str], raw: bytes) -> PeerAnswer:
        """One peer protocol request from the HTTP API (never raises)."""
        if self._peer_api is None:
            body = (
                b'{"error": {"code": 2104, "message": "starting", "name": "NotReady", '
                b'"peer_code": "not_ready"}}'
            )
            return PeerAnswer(503, body, {"Content-Type": "application/json"})
        return await self._peer_api.handle(message, headers, raw)

    async def backup(self, path: object) -> dict[str, Any]:
        """`fedimint-backup`: a consistent online copy of the database to the new file `path`."""
        try:
            result = await write_backup(self.db, path, self.clock.now())
        except (InvalidInput, AlreadyExists) as exc:
            self.log(f"fedimint-backup refused: {exc.message}", "info")
            raise
        self.log(f"database backed up to {result.path} ({result.size_bytes} bytes)", "info")
        return dataclasses.asdict(result)

    async def dev_crash(self, point: object) -> dict[str, Any]:
        """`fedimint-dev-crash` (developer-only): kill the plugin right after `point` is committed."""
        if self._dev is None:
            self._dev = DevTools(self.db, self.node, self.log)
        return await self._dev.crash_at(point)

    async def handle_htlc(self, event: HtlcEvent) -> dict[str, Any]:
        """Answer an HTLC the router said is ours (unrelated ones never get here)."""
        decision = self.router.classify(event)
        if decision.owner is HtlcOwner.UNRELATED or self._incoming is None:
            return answer_continue()
        if self._stopping:
            raise LeaveUnanswered("the gateway is stopping")
        return await self._incoming.handle(event, decision)
