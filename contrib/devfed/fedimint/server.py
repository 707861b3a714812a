"""Start devfed's Fedimint family in-process: one WebSocket listener per guardian, plus admin.

``devfed run --api fedimint`` and the tests use :func:`start_fedimint`. State lives in
``<data_dir>/fedimint.sqlite``: on first start keys are dealt and guardian ``i`` listens on
``base_port + i`` (any free port when 0); a restart reuses the stored config, hence the same
URLs, federation id and invite code.

The admin listener (loopback) serves ``GET /admin/status``, ``POST /admin/faucet``
(``{"transaction": hex}``: a transaction with mint outputs and no inputs, up to the faucet limit,
for tests and demos to get notes; its outputs are signed like any others) and
``POST /admin/guardians/{peer}/fault``
(``{"mode": "honest" | "offline" | "byzantine" | "unsigning" | "silent"}``).
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, web

from contrib.devfed.fedimint.consensus import NoConsensus, Sequencer, Source
from contrib.devfed.fedimint.keys import (
    LN_CONSENSUS_VERSION,
    LN_PK_SET_KEY,
    LNV2_CONSENSUS_VERSION,
    LNV2_INSTANCE_ID,
    MINT_CONSENSUS_VERSION,
    MINT_INSTANCE_ID,
    FedimintParams,
    client_config,
    deal_and_store,
    deal_ln_and_store,
    deal_lnv2,
    lnv2_secret,
)
from contrib.devfed.fedimint.ln import LN_INSTANCE_ID, LnConsensus, LnGuardian
from contrib.devfed.fedimint.ln_store import LnStore
from contrib.devfed.fedimint.lnv2 import Lnv2Guardian, Lnv2Module
from contrib.devfed.fedimint.mint import FaultMode, MintGuardian, MintVerifier
from contrib.devfed.fedimint.modules import ConsensusModule
from contrib.devfed.fedimint.rpc import GuardianRpc
from contrib.devfed.fedimint.store import FedimintStore
from fedimint_gw.clock import SystemClock
from fedimint_gw.crypto.bls import threshold_crypto as tc
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.fedimint.config import ClientConfig, parse_client_config
from fedimint_gw.fedimint.errors import DecodeError
from fedimint_gw.fedimint.invite import InviteCode
from fedimint_gw.fedimint.ln.items import LN_KIND, LightningClientConfig
from fedimint_gw.fedimint.lnv2.config import Lnv2ClientConfig
from fedimint_gw.fedimint.mint_types import MintClientConfig
from fedimint_gw.fedimint.versions import (
    ApiVersion,
    SupportedApiVersionsSummary,
    SupportedCoreApiVersions,
    SupportedModuleApiVersions,
)

log = logging.getLogger("devfed.fedimint")
DB_NAME = "fedimint.sqlite"
STATUS_FILE = "fedimint-status.json"
INVITE_FILE = "fedimint-invite.txt"
CORE_API = ApiVersion(0, 5)
MINT_API = ApiVersion(0, 1)
LNV2_API = ApiVersion(0, 0)
LN_API = ApiVersion(0, 1)
AWAIT_TIMEOUT = 60.0


class FedimintFederation:
    """The state of one federation: store, config, sequencer and the guardians' own shares."""

    def __init__(self, store: FedimintStore, config: ClientConfig, faucet_limit_msat: int) -> None:
        self.store = store
        self.client_config = config
        self.mint_instance_id = MINT_INSTANCE_ID
        module = config.modules[MINT_INSTANCE_ID]
        self.mint_config = MintClientConfig.from_bytes(module.raw)
        self.federation_id: FederationId = config.federation_id()
        self.invite_code = str(InviteCode.new(config.api_endpoints[0].url, 0, self.federation_id))
        self.guardians = [MintGuardian(p, store.key_shares(p)) for p in sorted(config.api_endpoints)]
        self.lnv2: Lnv2Module | None = None
        self.lnv2_guardians: list[Lnv2Guardian] = []
        modules: dict[int, ConsensusModule] = {}
        module_versions = {
            MINT_INSTANCE_ID: SupportedModuleApiVersions(
                config.consensus_version, MINT_CONSENSUS_VERSION, (MINT_API,)
            )
        }
        if LNV2_INSTANCE_ID in config.modules:
            self.lnv2 = Lnv2Module(
                store, Lnv2ClientConfig.from_bytes(config.modules[LNV2_INSTANCE_ID].raw), SystemClock().now
            )
            self.lnv2_guardians = [Lnv2Guardian(g, lnv2_secret(store, g.peer_id)) for g in self.guardians]
            modules[LNV2_INSTANCE_ID] = self.lnv2
            module_versions[LNV2_INSTANCE_ID] = SupportedModuleApiVersions(
                config.consensus_version, LNV2_CONSENSUS_VERSION, (LNV2_API,)
            )
        self.ln = self._ln_module(store, config)
        self.sequencer = Sequencer(
            store,
            MintVerifier(self.mint_config),
            MINT_INSTANCE_ID,
            config.consensus_version,
            faucet_limit_msat,
            online=self.online_guardians,
            threshold=config.threshold,
            modules=modules,
            ln=self.ln,
        )
        if self.ln is not None:
            module_versions[LN_INSTANCE_ID] = SupportedModuleApiVersions(
                config.consensus_version, LN_CONSENSUS_VERSION, (LN_API,)
            )
        self.api_versions = SupportedApiVersionsSummary(
            SupportedCoreApiVersions(config.consensus_version, (CORE_API,)),
            dict(sorted(module_versions.items())),
        )
        self.await_timeout = AWAIT_TIMEOUT
        self.clock: Callable[[], float] = time.time
        """Wall clock for gateway registration TTLs (tests replace it)."""
        self.sockets: set[web.WebSocketResponse] = set()
        """Open client connections (closed first on stop, so shutdown does not wait for clients)."""
        self.unserved: list[str] = []
        """Methods clients asked for that devfed does not serve (also logged at WARNING)."""

    def _ln_module(self, store: FedimintStore, config: ClientConfig) -> LnConsensus | None:
        """The `ln` module when the config has one at instance 0 (each guardian with its own share)."""
        module = config.modules.get(LN_INSTANCE_ID)
        if module is None or module.kind != LN_KIND:
            return None
        raw_pk_set = store.get_meta(LN_PK_SET_KEY)
        if raw_pk_set is None:
            raise ValueError("the stored federation serves ln but has no ln key set")
        ln_store = LnStore(store)
        guardians = [
            LnGuardian(g.peer_id, ln_store.key_share(g.peer_id), _fault_of(g)) for g in self.guardians
        ]
        pk_set = tc.PublicKeySet.decode(bytes.fromhex(raw_pk_set))
        ln_config = LightningClientConfig.from_bytes(module.raw)
        return LnConsensus(ln_store, ln_config, pk_set, guardians, config.threshold)

    def online_guardians(self) -> int:
        """How many guardians take part in consensus (not fault-injected offline)."""
        return sum(g.fault is not FaultMode.OFFLINE for g in self.guardians)

    @classmethod
    def open(cls, data_dir: Path, params: FedimintParams, urls: list[str]) -> FedimintFederation:
        """Open the federation in ``data_dir``, dealing keys on first start."""
        data_dir.mkdir(parents=True, exist_ok=True)
        store = FedimintStore(data_dir / DB_NAME)
        raw = store.get_meta("client_config")
        if raw is None:
            with store.atomic():
                mint = deal_and_store(store, params)
                lnv2 = deal_lnv2(store, params) if params.lnv2 else None
                ln = deal_ln_and_store(store, params) if params.ln else None
                config = client_config(params, urls, mint, lnv2, ln)
                store.set_meta("client_config", json.dumps(config.to_json()))
                store.set_meta("faucet_limit_msat", str(params.faucet_limit_msat))
        else:
            config = parse_client_config(json.loads(raw))
        limit = int(store.get_meta("faucet_limit_msat") or params.faucet_limit_msat)
        return cls(store, config, limit)

    def close(self) -> None:
        self.store.close()


def _fault_of(guardian: MintGuardian) -> Callable[[], FaultMode]:
    return lambda: guardian.fault


def stored_urls(data_dir: Path) -> list[str] | None:
    """The guardian URLs of the federation stored in ``data_dir``, if any."""
    if not (data_dir / DB_NAME).exists():
        return None
    store = FedimintStore(data_dir / DB_NAME)
    try:
        raw = store.get_meta("client_config")
    finally:
        store.close()
    if raw is None:
        return None
    config = parse_client_config(json.loads(raw))
    return [p.url for _, p in sorted(config.api_endpoints.items())]


@dataclass
class RunningFedimint:
    """A started federation; ``await stop()`` shuts it down."""

    federation: FedimintFederation
    guardian_urls: tuple[str, ...]
    admin_url: str
    data_dir: Path
    _runners: list[web.AppRunner] = field(default_factory=list, repr=False)

    @property
    def invite_code(self) -> str:
        return self.federation.invite_code

    @property
    def federation_id(self) -> FederationId:
        return self.federation.federation_id

    async def stop(self) -> None:
        """Close client connections, every listener and the store."""
        for ws in list(self.federation.sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"devfed shutting down")
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        self.federation.close()


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def _serve(app: web.Application, sock: socket.socket) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner


def guardian_app(federation: FedimintFederation, peer_id: int) -> web.Application:
    """Guardian ``peer_id``'s WebSocket JSON-RPC endpoint at ``/``."""
    app = web.Application()
    app.router.add_get("/", GuardianRpc(federation, peer_id).websocket)
    return app


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def admin_app(federation: FedimintFederation) -> web.Application:
    """Loopback admin routes: status, faucet, fault injection."""

    async def status(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "federation_id": federation.federation_id.hex,
                "invite_code": federation.invite_code,
                "sessions": federation.store.session_count(),
                "spent_notes": federation.store.count_spent(),
                "guardians": [{"peer_id": g.peer_id, "fault": g.fault.value} for g in federation.guardians],
                "unserved_methods": sorted(set(federation.unserved)),
            }
        )

    async def faucet(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            raw = body.get("transaction") if isinstance(body, dict) else None
            if not isinstance(raw, str):
                raise ValueError('the faucet takes {"transaction": hex}')
            outcome = await federation.sequencer.submit(bytes.fromhex(raw), Source.FAUCET)
        except (ValueError, DecodeError) as exc:
            log.info("faucet: bad request: %s", exc)
            return web.json_response({"error": str(exc)}, status=400)
        except NoConsensus as exc:
            return web.json_response({"error": str(exc)}, status=503)
        return web.json_response({"outcome": outcome.to_hex(), "accepted": outcome.accepted})

    async def fault(request: web.Request) -> web.Response:
        try:
            peer = int(request.match_info["peer_id"])
            body = await request.json()
            mode = FaultMode(body["mode"])
            guardian = federation.guardians[peer]
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            log.info("fault: bad request: %s", exc)
            return web.json_response({"error": f"bad fault request: {exc}"}, status=400)
        guardian.fault = mode
        await federation.sequencer.retry_decryptions()
        return web.json_response({"peer_id": peer, "fault": mode.value})

    async def lnv2_admin(request: web.Request) -> web.Response:
        """``{"add_gateway": url}``, ``{"remove_gateway": url}`` or ``{"block_count": n}``."""
        module = federation.lnv2
        if module is None:
            return web.json_response({"error": "this federation does not serve lnv2"}, status=404)
        try:
            body = await request.json()
            if not isinstance(body, dict) or len(body) != 1:
                raise ValueError("one of add_gateway, remove_gateway, block_count")
            ((key, value),) = body.items()
            if key == "block_count" and type(value) is int and value >= module.block_count():
                module.set_block_count(value)
                return web.json_response({"block_count": value})
            if key in ("add_gateway", "remove_gateway") and isinstance(value, str) and value:
                changed = module.add_gateway(value) if key == "add_gateway" else module.remove_gateway(value)
                return web.json_response({"changed": changed, "gateways": module.gateways()})
            raise ValueError(f"bad lnv2 admin request {key!r}")
        except ValueError as exc:
            log.info("lnv2 admin: bad request: %s", exc)
            return web.json_response({"error": str(exc)}, status=400)

    async def ln_block_count(request: web.Request) -> web.Response:
        ln = federation.ln
        try:
            body = await request.json()
            count = body["block_count"]
            if ln is None or isinstance(count, bool) or not isinstance(count, int):
                raise ValueError("the federation serves no ln module, or block_count is not an integer")
            if not ln.store.block_count() <= count < 2**32:
                raise ValueError("the block count only moves forward (and stays below 2^32)")
        except (ValueError, KeyError, TypeError) as exc:
            log.info("ln block count: bad request: %s", exc)
            return web.json_response({"error": f"bad block count request: {exc}"}, status=400)
        with federation.store.atomic():
            ln.store.set_block_count(count)
        await federation.sequencer.notify()
        return web.json_response({"block_count": count})

    app = web.Application()
    app.router.add_post("/admin/lnv2", lnv2_admin)
    app.router.add_get("/admin/status", status)
    app.router.add_post("/admin/faucet", faucet)
    app.router.add_post("/admin/guardians/{peer_id}/fault", fault)
    app.router.add_post("/admin/ln/block_count", ln_block_count)
    return app


async def start_fedimint(
    data_dir: Path,
    params: FedimintParams | None = None,
    *,
    host: str = "127.0.0.1",
    base_port: int = 0,
    admin_port: int = 0,
) -> RunningFedimint:
    """Start (or restart) the Fedimint-family federation stored in ``data_dir``."""
    params = params or FedimintParams()
    urls = stored_urls(data_dir)
    if urls is not None:
        socks = []
        for url in urls:
            parts = urlsplit(url)
            socks.append(_bind(parts.hostname or host, parts.port or 80))
    else:
        socks = [_bind(host, base_port + i if base_port else 0) for i in range(params.guardians)]
        urls = [f"ws://{host}:{s.getsockname()[1]}/" for s in socks]
    federation = FedimintFederation.open(data_dir, params, urls)
    runners = [await _serve(guardian_app(federation, i), s) for i, s in enumerate(socks)]
    admin_sock = _bind("127.0.0.1", admin_port)
    runners.append(await _serve(admin_app(federation), admin_sock))
    admin_url = f"http://127.0.0.1:{admin_sock.getsockname()[1]}"
    running = RunningFedimint(federation, tuple(urls), admin_url, data_dir, runners)
    (data_dir / INVITE_FILE).write_text(federation.invite_code + "\n")
    status = {
        "federation_id": federation.federation_id.hex,
        "invite_code": federation.invite_code,
        "admin_url": admin_url,
        "guardian_urls": list(urls),
    }
    (data_dir / STATUS_FILE).write_text(json.dumps(status, indent=2) + "\n")
    return running
