"""Fedimint's LNv2 gateway routes, at the root as real clients call them (reference §5):

    POST /routing_info           body: federation id (bare JSON string) -> RoutingInfo | null
    POST /create_bolt11_invoice  CreateBolt11InvoicePayload -> bolt11 (bare JSON string)
    POST /send_payment           SendPaymentPayload -> {"Ok": [32 ints]} | {"Err": "<sig hex>"}

Bodies are decoded within ``jsonin``'s bounds, then parsed strictly into the protocol types
(``fedimint/lnv2/gateway_api.py``): anything malformed is a ``DecodeError`` (400) before the
service sees it. The service (:class:`Lnv2Api`) checks the money rules (the sender's auth, the
contract on a threshold answer); errors are translated by the app's error middleware.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from aiohttp import web

from fedimint_gw.errors import InvalidInput
from fedimint_gw.fedimint.errors import DecodeError
from fedimint_gw.fedimint.lnv2.gateway_api import (
    CreateBolt11InvoicePayload,
    RoutingInfo,
    SendOutcome,
    SendPaymentPayload,
    parse_federation_id,
)
from fedimint_gw.http import jsonin

SEND_DEADLINE = 300.0
DEFAULT_DEADLINE = 60.0


class Lnv2Api(Protocol):
    """What the LNv2 routes need from the services."""

    async def lnv2_routing_info(self, federation_id: bytes) -> RoutingInfo | None:
        """Our routing info for a federation we serve over LNv2, or None."""
        ...

    async def lnv2_create_bolt11_invoice(self, payload: CreateBolt11InvoicePayload) -> str:
        """An invoice of our node for the receiver's checked incoming contract."""
        ...

    async def lnv2_send_payment(self, payload: SendPaymentPayload) -> SendOutcome:
        """Pay the invoice for the sender's checked contract: the preimage or a forfeit."""
        ...


async def _body(request: web.Request) -> object:
    return jsonin.decode(await request.read())


def add_lnv2_routes(app: web.Application, api: Lnv2Api) -> None:
    """Register the three routes on ``app`` (whose middlewares translate errors)."""

    async def routing_info(request: web.Request) -> web.StreamResponse:
        try:
            federation_id = parse_federation_id(await _body(request))
        except DecodeError as exc:
            raise InvalidInput(f"the body must be a federation id (JSON string): {exc.message}") from None
        info = await asyncio.wait_for(api.lnv2_routing_info(federation_id), DEFAULT_DEADLINE)
        return web.json_response(None if info is None else info.to_json())

    async def create_bolt11_invoice(request: web.Request) -> web.StreamResponse:
        payload = CreateBolt11InvoicePayload.from_json(await _body(request))
        bolt11 = await asyncio.wait_for(api.lnv2_create_bolt11_invoice(payload), DEFAULT_DEADLINE)
        return web.json_response(bolt11)

    async def send_payment(request: web.Request) -> web.StreamResponse:
        payload = SendPaymentPayload.from_json(await _body(request))
        outcome = await asyncio.wait_for(api.lnv2_send_payment(payload), SEND_DEADLINE)
        return web.json_response(outcome.to_json())

    app.router.add_post("/routing_info", routing_info)
    app.router.add_post("/create_bolt11_invoice", create_bolt11_invoice)
    app.router.add_post("/send_payment", send_payment)
