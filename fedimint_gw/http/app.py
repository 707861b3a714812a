"""The public gateway API (aiohttp): what users' wallets and peer gateways call.

Errors are translated here and only here: `{"error": {"code", "name", "message"}}` with the
HTTP status of the GatewayError; anything unexpected is a 500 with no detail but a log line.
Bodies are limited to 64 KiB; long operations answer 504 after a deadline, and the same
request can simply be repeated (every write endpoint is idempotent).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from aiohttp import web

from fedimint_gw.errors import GatewayError, InvalidInput
from fedimint_gw.http.peer import add_peer_routes
from fedimint_gw.peer.wire import PeerAnswer

MAX_BODY = 64 * 1024
SEND_DEADLINE = 300.0
DEFAULT_DEADLINE = 60.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class PublicApi(Protocol):
    """The services the HTTP API exposes (implemented by `services.public_api.PublicService`)."""

    async def public_id(self) -> dict[str, Any]: ...

    async def public_info(self) -> dict[str, Any]: ...

    async def pay_invoice(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def send_payment(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def routing_info(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def create_bolt11_invoice(self, body: dict[str, Any]) -> dict[str, Any]: ...

    async def verify(self, payment_hash: str) -> dict[str, Any]: ...

    async def peer_message(self, message: str, headers: Mapping[str, str], raw: bytes) -> PeerAnswer: ...


def error_body(code: int, name: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "name": name, "message": message}}


def create_app(api: PublicApi, log: Callable[[str, str], None]) -> web.Application:
    """Build the aiohttp application serving `api`."""

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except GatewayError as exc:
            return web.json_response(
                error_body(exc.code, type(exc).__name__, exc.message), status=exc.http_status
            )
        except web.HTTPException as exc:
            return web.json_response(error_body(exc.status, "HttpError", exc.reason), status=exc.status)
        except asyncio.TimeoutError:
            return web.json_response(
                error_body(504, "Timeout", "still in progress; repeat the same request to get the outcome"),
                status=504,
            )
        except Exception as exc:
            log(f"HTTP {request.method} {request.path}: unexpected {exc!r}", "error")
            return web.json_response(error_body(2100, "GatewayError", "internal error"), status=500)

    async def body_of(request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput("the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise InvalidInput("the request body must be a JSON object")
        return body

    def post(method: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]], deadline: float) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            body = await body_of(request)
            return web.json_response(await asyncio.wait_for(method(body), deadline))

        return handle

    async def gateway_id(request: web.Request) -> web.StreamResponse:
        return web.json_response(await api.public_id())

    async def info(request: web.Request) -> web.StreamResponse:
        return web.json_response(await api.public_info())

    async def verify(request: web.Request) -> web.StreamResponse:
        return web.json_response(await api.verify(request.match_info["payment_hash"]))

    app = web.Application(middlewares=[errors], client_max_size=MAX_BODY)
    app.router.add_get("/v1/id", gateway_id)
    app.router.add_get("/v1/info", info)
    app.router.add_get("/v1/verify/{payment_hash}", verify)
    app.router.add_post("/v1/pay_invoice", post(api.pay_invoice, SEND_DEADLINE))
    app.router.add_post("/v1/send_payment", post(api.send_payment, SEND_DEADLINE))
    app.router.add_post("/v1/routing_info", post(api.routing_info, DEFAULT_DEADLINE))
    app.router.add_post("/v1/create_bolt11_invoice", post(api.create_bolt11_invoice, DEFAULT_DEADLINE))
    add_peer_routes(app, api)
    return app


class HttpServer:
    """Runs the app on host:port; `port` 0 picks a free one (see `.port` after start)."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        self._host = host
        self._port = port
        self.port = port

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        await self._runner.cleanup()
