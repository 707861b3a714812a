"""Admin API (loopback only): gateway vetting for v2, block height, fault injection, status."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from contrib.devfed.api_v1 import error_response
from contrib.devfed.chain import CounterHeight
from contrib.devfed.codec import as_object, bad, get_int, get_str, parse_json
from contrib.devfed.errors import DevfedError, ErrorCode
from contrib.devfed.federation import Federation
from contrib.devfed.guardian import Fault, FaultMode

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DevfedError as exc:
        return error_response(exc)


class AdminRoutes:
    """``/admin/...`` handlers."""

    def __init__(self, federation: Federation, invite_code: str) -> None:
        self.fed = federation
        self.invite_code = invite_code

    def app(self) -> web.Application:
        """The admin aiohttp application."""
        app = web.Application(middlewares=[_errors])
        app.router.add_get("/admin/status", self.status)
        app.router.add_post("/admin/guardians/{peer_id}/fault", self.set_fault)
        app.router.add_post("/admin/block_height", self.advance)
        app.router.add_get("/admin/gateways", self.list_gateways)
        app.router.add_post("/admin/gateways", self.add_gateway)
        app.router.add_delete("/admin/gateways", self.remove_gateway)
        return app

    async def status(self, request: web.Request) -> web.Response:
        """GET /admin/status."""
        return web.json_response(
            {
                "federation_id": self.fed.federation_id,
                "invite_code": self.invite_code,
                "height": await self.fed.chain.height(),
                "guardians": [
                    {
                        "peer_id": g.peer_id,
                        "url": self.fed.config.guardians[g.peer_id].url,
                        "fault": g.fault.to_dict(),
                    }
                    for g in self.fed.guardians
                ],
                "vetted_gateways": self.fed.store.vetted_gateways(),
                "transactions": self.fed.store.count_transactions(),
            }
        )

    async def set_fault(self, request: web.Request) -> web.Response:
        """POST /admin/guardians/{peer_id}/fault ``{"mode": honest|offline|slow|byzantine, "delay_ms"}``."""
        try:
            peer_id = int(request.match_info["peer_id"])
        except ValueError:
            raise bad("peer_id must be an integer") from None
        guardian = self.fed.guardian(peer_id)
        body = as_object(parse_json(await request.read()), "request")
        try:
            mode = FaultMode(get_str(body, "mode", "request"))
        except ValueError:
            raise bad(f"mode must be one of {[m.value for m in FaultMode]}") from None
        delay = get_int(body, "delay_ms", "request") if mode is FaultMode.SLOW else 0
        guardian.fault = Fault(mode, delay)
        return web.json_response({"peer_id": peer_id, "fault": guardian.fault.to_dict()})

    async def advance(self, request: web.Request) -> web.Response:
        """POST /admin/block_height ``{"advance": n}`` (counter mode only)."""
        body = as_object(parse_json(await request.read()), "request")
        blocks = get_int(body, "advance", "request")
        if not isinstance(self.fed.chain, CounterHeight):
            raise DevfedError(ErrorCode.UNSUPPORTED, "block height follows bitcoind; mine blocks there")
        return web.json_response({"height": self.fed.chain.advance(blocks)})

    async def list_gateways(self, request: web.Request) -> web.Response:
        """GET /admin/gateways: v2-vetted URLs."""
        return web.json_response({"gateways": self.fed.store.vetted_gateways()})

    async def add_gateway(self, request: web.Request) -> web.Response:
        """POST /admin/gateways ``{"url": ...}``: vet a gateway for v2."""
        return await self._vet(request, True)

    async def remove_gateway(self, request: web.Request) -> web.Response:
        """DELETE /admin/gateways ``{"url": ...}``."""
        return await self._vet(request, False)

    async def _vet(self, request: web.Request, vetted: bool) -> web.Response:
        body = as_object(parse_json(await request.read()), "request")
        url = get_str(body, "url", "request")
        if not url.startswith(("http://", "https://")):
            raise bad("url must be http(s)")
        with self.fed.store.atomic():
            self.fed.store.vet_gateway(url, vetted)
        return web.json_response({"gateways": self.fed.store.vetted_gateways()})
