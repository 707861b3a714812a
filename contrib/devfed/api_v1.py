"""API v1: HTTP+JSON REST under ``{guardian url}/v1/...`` plus the version-neutral ``/version``.

Errors are ``{"error": {"code": int, "name": str, "message": str}}`` with the HTTP status of
the code (see :class:`contrib.devfed.errors.ErrorCode`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from contrib.devfed import faults
from contrib.devfed.codec import as_object, get_hex, parse_json
from contrib.devfed.errors import DevfedError, ErrorCode
from contrib.devfed.federation import Federation

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(exc: DevfedError) -> web.Response:
    """The v1 / admin error body."""
    return web.json_response({"error": exc.to_dict()}, status=exc.code.http_status)


def version_body(federation: Federation) -> dict[str, object]:
    """``{"majors": [{"major", "max_minor"}, ...]}``: identical for every version."""
    return {"majors": [{"major": a.major, "max_minor": a.max_minor} for a in federation.config.api]}


def fault_middleware(federation: Federation, peer_id: int) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Apply the guardian's injected fault, and map errors to JSON for every route."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        guardian = federation.guardian(peer_id)
        if not guardian.online:
            return error_response(DevfedError(ErrorCode.GUARDIAN_OFFLINE, f"guardian {peer_id} is offline"))
        if guardian.fault.delay_ms:
            await asyncio.sleep(guardian.fault.delay_ms / 1000)
        try:
            return await handler(request)
        except DevfedError as exc:
            return error_response(exc)

    return middleware


async def _body(request: web.Request) -> object:
    return parse_json(await request.read())


def _hex_param(request: web.Request, name: str) -> str:
    return get_hex({name: request.match_info[name]}, name, "path", 32)


class V1Routes:
    """Handlers of one guardian's v1 API."""

    def __init__(self, federation: Federation, peer_id: int) -> None:
        self.fed = federation
        self.peer_id = peer_id

    def add_to(self, app: web.Application) -> None:
        """Register the routes."""
        app.router.add_get("/v1/version", self.version)
        app.router.add_get("/v1/config", self.config)
        app.router.add_post("/v1/transactions", self.submit)
        app.router.add_get("/v1/transactions/{txid}", self.transaction)
        app.router.add_get("/v1/transactions/{txid}/signature_shares", self.signature_shares)
        app.router.add_post("/v1/faucet", self.faucet)
        app.router.add_post("/v1/offers", self.publish_offer)
        app.router.add_get("/v1/offers/{payment_hash}", self.offer)
        app.router.add_get("/v1/contracts/{contract_id}", self.contract)
        app.router.add_post("/v1/contracts/{contract_id}/cancel", self.cancel)
        app.router.add_post("/v1/gateways", self.register_gateway)
        app.router.add_get("/v1/gateways", self.gateways)
        app.router.add_get("/v1/block_height", self.block_height)

    async def version(self, request: web.Request) -> web.Response:
        """GET /v1/version."""
        return web.json_response(version_body(self.fed))

    async def config(self, request: web.Request) -> web.Response:
        """GET /v1/config: the public config exactly as hashed into the federation id."""
        return web.json_response(self.fed.config.to_dict())

    async def submit(self, request: web.Request) -> web.Response:
        """POST /v1/transactions: body is the transaction."""
        return web.json_response(await faults.submit(self.fed, self.peer_id, await _body(request)))

    async def faucet(self, request: web.Request) -> web.Response:
        """POST /v1/faucet: ``{"outputs": [note outputs]}``."""
        body = as_object(await _body(request), "request")
        tx = {"inputs": [], "outputs": body.get("outputs")}
        return web.json_response(await self.fed.sequencer.submit(tx, faucet=True))

    async def transaction(self, request: web.Request) -> web.Response:
        """GET /v1/transactions/{txid}."""
        txid = _hex_param(request, "txid")
        body, result = self.fed.sequencer.transaction(txid)
        return web.json_response({"txid": txid, "transaction": body, "result": result})

    async def signature_shares(self, request: web.Request) -> web.Response:
        """GET /v1/transactions/{txid}/signature_shares: this guardian's shares."""
        txid = _hex_param(request, "txid")
        shares = faults.signature_shares(self.fed, self.peer_id, txid)
        return web.json_response(
            {
                "peer_id": self.peer_id,
                "txid": txid,
                "shares": [dict(share.to_dict(), out_idx=j) for j, share in shares],
            }
        )

    async def publish_offer(self, request: web.Request) -> web.Response:
        """POST /v1/offers."""
        self._need_v1()
        return web.json_response(self.fed.sequencer.offers.publish(await _body(request)))

    async def offer(self, request: web.Request) -> web.Response:
        """GET /v1/offers/{payment_hash}."""
        return web.json_response(self.fed.sequencer.offers.get(_hex_param(request, "payment_hash")))

    async def contract(self, request: web.Request) -> web.Response:
        """GET /v1/contracts/{contract_id}."""
        return web.json_response(faults.contract(self.fed, self.peer_id, _hex_param(request, "contract_id")))

    async def cancel(self, request: web.Request) -> web.Response:
        """POST /v1/contracts/{contract_id}/cancel: ``{"signature": hex}`` by the gateway key."""
        body = as_object(await _body(request), "request")
        cid = _hex_param(request, "contract_id")
        return web.json_response(await self.fed.sequencer.cancel_outgoing(cid, body.get("signature")))

    async def register_gateway(self, request: web.Request) -> web.Response:
        """POST /v1/gateways: ``{"registration": {...}, "signature": hex}``."""
        return web.json_response(self.fed.sequencer.offers.register_gateway(await _body(request)))

    async def gateways(self, request: web.Request) -> web.Response:
        """GET /v1/gateways: unexpired registrations."""
        return web.json_response({"gateways": self.fed.sequencer.offers.gateways()})

    async def block_height(self, request: web.Request) -> web.Response:
        """GET /v1/block_height."""
        return web.json_response({"height": await faults.block_height(self.fed, self.peer_id)})

    def _need_v1(self) -> None:
        if 1 not in self.fed.config.majors:
            raise DevfedError(ErrorCode.UNSUPPORTED, "this federation does not serve API v1")
