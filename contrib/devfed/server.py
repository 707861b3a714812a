"""Start a federation in-process: one aiohttp listener per guardian plus the admin listener.

Tests and ``devfed run`` both use :func:`start_federation`.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from contrib.devfed.admin import AdminRoutes
from contrib.devfed.api_v1 import V1Routes, fault_middleware, version_body
from contrib.devfed.api_v2 import V2Rpc
from contrib.devfed.federation import Federation, FederationParams
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.invite import InviteCode

STATUS_FILE = "status.json"
INVITE_FILE = "invite.txt"


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


@dataclass
class RunningFederation:
    """A started federation: its state, URLs, invite code; ``await stop()`` to shut it down."""

    federation: Federation
    guardian_urls: tuple[str, ...]
    admin_url: str
    invite_code: str
    data_dir: Path
    _runners: list[web.AppRunner] = field(default_factory=list, repr=False)

    @property
    def federation_id(self) -> str:
        """The federation id (hex)."""
        return self.federation.federation_id

    async def stop(self) -> None:
        """Close every listener and the store."""
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        self.federation.close()


def guardian_app(federation: Federation, peer_id: int) -> web.Application:
    """One guardian's application: ``/version``, v1 routes and/or ``/v2/ws`` as configured."""
    app = web.Application(middlewares=[fault_middleware(federation, peer_id)])

    async def version(request: web.Request) -> web.Response:
        return web.json_response(version_body(federation))

    app.router.add_get("/version", version)
    if 1 in federation.config.majors:
        V1Routes(federation, peer_id).add_to(app)
    if 2 in federation.config.majors:
        V2Rpc(federation, peer_id).add_to(app)
    return app


async def _serve(app: web.Application, sock: socket.socket) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner


async def start_federation(
    data_dir: Path,
    params: FederationParams | None = None,
    *,
    host: str = "127.0.0.1",
    base_port: int = 0,
    admin_port: int = 0,
    clock: Callable[[], float] = time.time,
) -> RunningFederation:
    """Start (or restart) the federation stored in ``data_dir``.

    On first start keys are dealt and guardian ``i`` listens on ``base_port + i`` (any free
    port when ``base_port`` is 0); a restart reuses the stored config, hence the same URLs and
    federation id. ``params`` only matter on first start (and for ``bitcoind_rpc``).
    """
    params = params or FederationParams()
    stored = Federation.stored_config(data_dir)
    if stored is not None:
        socks = []
        for g in stored.guardians:
            parts = urlsplit(g.url)
            socks.append(_bind(parts.hostname or host, parts.port or 80))
        urls = [g.url for g in stored.guardians]
    else:
        socks = [_bind(host, base_port + i if base_port else 0) for i in range(params.guardians)]
        urls = [f"http://{host}:{s.getsockname()[1]}" for s in socks]
    federation = Federation.open(data_dir, params, urls, clock)
    invite = InviteCode(FederationId(federation.federation_id), tuple(urls)).encode()
    runners = [await _serve(guardian_app(federation, i), s) for i, s in enumerate(socks)]
    admin_sock = _bind("127.0.0.1", admin_port)
    runners.append(await _serve(AdminRoutes(federation, invite).app(), admin_sock))
    admin_url = f"http://127.0.0.1:{admin_sock.getsockname()[1]}"
    running = RunningFederation(federation, tuple(urls), admin_url, invite, data_dir, runners)
    (data_dir / INVITE_FILE).write_text(invite + "\n")
    status = {
        "federation_id": federation.federation_id,
        "invite_code": invite,
        "admin_url": admin_url,
        "guardian_urls": urls,
        "api_majors": sorted(federation.config.majors),
    }
    (data_dir / STATUS_FILE).write_text(json.dumps(status, indent=2) + "\n")
    return running
