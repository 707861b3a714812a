"""Admin API (loopback only): gateway vetting for v2, block height, fault injection, status."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from contrib.devfed import faults
from contrib.devfed.api_v1 import error_response
from contrib.devfed.chain import CounterHeight
from contrib.devfed.codec import as_object, bad, get_hex, get_int, get_str, parse_json
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
        """POST /admin/guardians/{peer_id}/fault ``{"mode", ...}``: one of honest, offline, slow
        (``delay_ms``), byzantine, lying (``contracts``: {id: view}, ``height_offset``,
        ``refuse_submissions``), withholding, unsigning, dropping (``defer`` or ``discard``).
        Leaving a deferring ``dropping`` applies the submissions it held back (answered under
        ``flushed``)."""
        try:
            peer_id = int(request.match_info["peer_id"])
        except ValueError:
            raise bad("peer_id must be an integer") from None
        guardian = self.fed.guardian(peer_id)
        body = as_object(parse_json(await request.read()), "request")
        fault = _parse_fault(body)
        was = guardian.fault
        guardian.fault = fault
        flushed: list[dict[str, object]] = []
        if was.mode is FaultMode.DROPPING and (fault.mode is not FaultMode.DROPPING or not fault.defer):
            flushed = await faults.flush(self.fed, peer_id)
        return web.json_response({"peer_id": peer_id, "fault": fault.to_dict(), "flushed": flushed})

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


def _flag(body: Mapping[str, object], key: str) -> bool:
    value = body.get(key, False)
    if not isinstance(value, bool):
        raise bad(f"{key} must be true or false")
    return value


def _parse_fault(body: Mapping[str, object]) -> Fault:
    """A fault from the admin request; bad input is refused whole (nothing changes)."""
    try:
        mode = FaultMode(get_str(body, "mode", "request"))
    except ValueError:
        raise bad(f"mode must be one of {[m.value for m in FaultMode]}") from None
    if mode is FaultMode.SLOW:
        return Fault(mode, delay_ms=get_int(body, "delay_ms", "request"))
    if mode is FaultMode.DROPPING:
        defer, discard = _flag(body, "defer"), _flag(body, "discard")
        if defer and discard:
            raise bad("a dropping guardian either defers or discards submissions, not both")
        return Fault(mode, defer=defer, discard=discard)
    if mode is not FaultMode.LYING:
        return Fault(mode)
    raw = as_object(body.get("contracts", {}), "contracts")
    contracts = {
        get_hex({"id": k}, "id", "contracts", 32): dict(as_object(v, f"contracts.{k}"))
        for k, v in raw.items()
    }
    offset = body.get("height_offset", 0)
    if isinstance(offset, bool) or not isinstance(offset, int) or abs(offset) > 1_000_000:
        raise bad("height_offset must be an integer of at most 1000000 blocks")
    return Fault(
        mode, contracts=contracts, height_offset=offset, refuse_submissions=_flag(body, "refuse_submissions")
    )
