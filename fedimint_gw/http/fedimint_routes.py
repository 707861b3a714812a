"""Fedimint's gateway API for LNv1 clients, at the root of the gateway's public API.

The official client (v0.7-era) calls, relative to the `api` URL in the gateway's announcement:
- `GET /id` -> 200 with a bare JSON string (the gateway id) before paying; any other status
  fails the payment at once;
- `POST /pay_invoice` with `{federation_id, contract_id, payment_data: {invoice} |
  {pruned_invoice}, preimage_auth}` -> 200 with a bare JSON string, the preimage hex; a failure
  is any non-200 answer (ours: the usual `{"error": ...}` body), after which the client waits for
  the contract's cancellation or its timelock.
Errors are translated by the app's middleware, like every other route.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from aiohttp import web

from fedimint_gw.http import jsonin

PAY_DEADLINE = 300.0


class FedimintGatewayApi(Protocol):
    """What these routes need from the services (`services.public_api.PublicService`)."""

    async def fedimint_gateway_id(self) -> str: ...

    async def fedimint_pay_invoice(self, body: dict[str, Any]) -> str: ...


def add_fedimint_routes(app: web.Application, api: FedimintGatewayApi) -> None:
    """Mount `GET /id` and `POST /pay_invoice` at the root."""

    async def gateway_id(request: web.Request) -> web.StreamResponse:
        return web.json_response(await api.fedimint_gateway_id())

    async def pay_invoice(request: web.Request) -> web.StreamResponse:
        body = jsonin.decode_object(await request.read())
        return web.json_response(await asyncio.wait_for(api.fedimint_pay_invoice(body), PAY_DEADLINE))

    app.router.add_get("/id", gateway_id)
    app.router.add_post("/pay_invoice", pay_invoice)
