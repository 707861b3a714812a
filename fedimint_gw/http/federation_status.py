"""The public federation status route (gatewayd's `/federation_status`), added to the public app.

Unauthenticated like gatewayd's: `POST {"federation_id"}`; served under `/v1/federation_status`
and, as gatewayd does, without the version prefix. Errors go through the public app's handler.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from aiohttp import web

from fedimint_gw.errors import InvalidInput


class FederationStatusSource(Protocol):
    """What answers the route (implemented by `services.ops.federation_status`)."""

    async def federation_status(self, body: dict[str, Any]) -> dict[str, Any]:
        """The status of the federation named in `body`."""
        ...


def add_federation_status_route(app: web.Application, source: FederationStatusSource) -> None:
    """Register `POST /v1/federation_status` and `POST /federation_status` on `app`."""

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput("the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise InvalidInput("the request body must be a JSON object")
        return web.json_response(await source.federation_status(body))

    app.router.add_post("/v1/federation_status", handle)
    app.router.add_post("/federation_status", handle)
