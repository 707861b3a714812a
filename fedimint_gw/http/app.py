"""The public gateway API (aiohttp): what users' wallets and peer gateways call.

Errors are translated here and only here: `{"error": {"code", "name", "message"}}` with the
HTTP status of the GatewayError; anything unexpected is a 500 with no detail but a log line.
Errors of the gateway's own side (a federation, lightningd or a peer failing) answer a fixed
text per kind: their messages name guardians, URLs and connection details, which are logged
(at info), not published.
Bodies are limited to 64 KiB, must be `application/json` (else 415: a web page cannot post a
form or plain text here; peer routes are signed instead) and are decoded by `jsonin`
(bounded depth, integers, valid Unicode). Requests other than the peer protocol's (but
including its hello) are rate-limited per client address (429); connections are capped and idle ones closed
(`limits`). Long operations answer 504 after a deadline, and the same request can simply be
repeated (every write endpoint is idempotent).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from aiohttp import web

from fedimint_gw.errors import (
    FederationMisbehaved,
    FederationRejected,
    FederationUnreachable,
    GatewayError,
    LightningFailure,
    NotReady,
    PeerError,
    RateLimited,
    UnsupportedMediaType,
)
from fedimint_gw.http import jsonin
from fedimint_gw.http.fedimint_lnv2_routes import Lnv2Api, add_lnv2_routes
from fedimint_gw.http.fedimint_routes import add_fedimint_routes
from fedimint_gw.http.limits import ConnectionGuard, HttpLimits, RateLimiter, client_key
from fedimint_gw.http.peer import add_peer_routes
from fedimint_gw.peer.wire import PeerAnswer

MAX_BODY = 64 * 1024
SEND_DEADLINE = 300.0
DEFAULT_DEADLINE = 60.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
GUARD = web.AppKey("connection_guard", ConnectionGuard)
LIMITS = web.AppKey("http_limits", HttpLimits)
PEER_PREFIX = "/v1/peer/"

# What the public sees of errors on the gateway's own side (the real message is logged).
_PUBLIC_MESSAGES: tuple[tuple[type[GatewayError], str], ...] = (
    (FederationUnreachable, "the federation did not answer in time; repeat the request later"),
    (FederationRejected, "the federation refused the transaction"),
    (FederationMisbehaved, "a guardian's answer failed verification; repeat the request later"),
    (LightningFailure, "the gateway's Lightning node could not complete the request"),
    (PeerError, "a peer gateway could not complete the request"),
)


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

    async def fedimint_gateway_id(self) -> str: ...

    async def fedimint_pay_invoice(self, body: dict[str, Any]) -> str: ...


def error_body(code: int, name: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "name": name, "message": message}}


def public_message(exc: GatewayError) -> str:
    """The message a stranger may see: the error's own for refusals of the request (4xx) and
    NotReady, a fixed text per kind for failures on the gateway's side."""
    if exc.http_status < 500 or isinstance(exc, NotReady):
        return exc.message
    for cls, text in _PUBLIC_MESSAGES:
        if isinstance(exc, cls):
            return text
    return "internal error"


def create_app(
    api: PublicApi,
    log: Callable[[str, str], None],
    limits: HttpLimits | None = None,
    lnv2: Lnv2Api | None = None,
) -> web.Application:
    """Build the aiohttp application serving `api`, within `limits` (defaults: HttpLimits());
    with `lnv2`, also Fedimint's LNv2 gateway routes at the root (`fedimint_lnv2_routes`)."""
    limits = limits or HttpLimits()
    rate = RateLimiter(limits)
    guard = ConnectionGuard(limits)

    @web.middleware
    async def tracked(request: web.Request, handler: Handler) -> web.StreamResponse:
        guard.begin(request.transport)
        try:
            return await handler(request)
        finally:
            guard.end(request.transport)

    @web.middleware
    async def admitted(request: web.Request, handler: Handler) -> web.StreamResponse:
        peer_route = request.path.startswith(PEER_PREFIX)
        # Signed peer traffic is not counted, except hello: anyone can make a node key and say it.
        counted = not peer_route or request.path == PEER_PREFIX + "hello"
        if counted and not rate.allow(client_key(request.remote)):
            raise RateLimited(f"too many requests; retry after {rate.retry_after()} s")
        # Peer routes are exempt: every peer request is signed, which no web page can forge.
        if request.method == "POST" and not peer_route and request.content_type != "application/json":
            raise UnsupportedMediaType("the request body must be JSON (Content-Type: application/json)")
        return await handler(request)

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except GatewayError as exc:
            shown = public_message(exc)
            if shown != exc.message:
                log(f"HTTP {request.method} {request.path}: {type(exc).__name__}: {exc.message}", "info")
            headers = {"Retry-After": str(rate.retry_after())} if isinstance(exc, RateLimited) else None
            return web.json_response(
                error_body(exc.code, type(exc).__name__, shown), status=exc.http_status, headers=headers
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
        return jsonin.decode_object(await request.read())

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

    app = web.Application(middlewares=[tracked, errors, admitted], client_max_size=MAX_BODY)
    app[GUARD] = guard
    app[LIMITS] = limits
    app.router.add_get("/v1/id", gateway_id)
    app.router.add_get("/v1/info", info)
    app.router.add_get("/v1/verify/{payment_hash}", verify)
    app.router.add_post("/v1/pay_invoice", post(api.pay_invoice, SEND_DEADLINE))
    app.router.add_post("/v1/send_payment", post(api.send_payment, SEND_DEADLINE))
    app.router.add_post("/v1/routing_info", post(api.routing_info, DEFAULT_DEADLINE))
    app.router.add_post("/v1/create_bolt11_invoice", post(api.create_bolt11_invoice, DEFAULT_DEADLINE))
    add_peer_routes(app, api)
    if lnv2 is not None:
        add_lnv2_routes(app, lnv2)
    add_fedimint_routes(app, api)
    return app


class HttpServer:
    """Runs the app on host:port; `port` 0 picks a free one (see `.port` after start).
    Connections are capped by the app's ConnectionGuard; idle ones are closed after the
    limits' `idle_timeout` (aiohttp's keep-alive timeout, 3630 s by default, is replaced)."""

    def __init__(self, app: web.Application, host: str, port: int) -> None:
        # The public app carries its guard and limits; operator-only apps (metrics, dashboard)
        # have neither: they get the default idle timeout and no connection cap.
        self._guard = app.get(GUARD)
        limits = app.get(LIMITS) or HttpLimits()
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=2.0, keepalive_timeout=limits.idle_timeout
        )
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self.port = port

    async def start(self) -> None:
        await self._runner.setup()
        handler = self._runner.server
        if handler is None:  # setup() always makes it; keeps mypy and the reader sure
            raise NotReady("the HTTP server did not set up")
        self._server = await asyncio.get_running_loop().create_server(
            handler if self._guard is None else self._guard.wrap(handler),
            self._host,
            self._port,
            reuse_address=True,
        )
        if self._server.sockets:
            self.port = int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        await self._runner.cleanup()
