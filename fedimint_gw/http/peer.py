"""Peer protocol routes (`POST /v1/peer/<message>`): raw bytes in, signed bytes out.

Authentication needs the exact body bytes and headers, so these routes hand the raw bytes to
the peer service, which answers with status, body and headers; the bytes are first checked
to be JSON that cannot hurt a parser (`jsonin`: depth, integer size, valid Unicode).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from aiohttp import web

from fedimint_gw.http import jsonin
from fedimint_gw.peer.wire import PeerAnswer


class PeerEndpoint(Protocol):
    """What the routes call (implemented by `Gateway`)."""

    async def peer_message(self, message: str, headers: Mapping[str, str], raw: bytes) -> PeerAnswer: ...


def add_peer_routes(app: web.Application, api: PeerEndpoint) -> None:
    """Register `POST /v1/peer/{message}` on `app`."""

    async def handle(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        jsonin.decode(raw)  # refuses hostile JSON (depth, huge integers, bad Unicode) before anyone reads it
        answer = await api.peer_message(request.match_info["message"], request.headers, raw)
        return web.Response(status=answer.status, body=answer.body, headers=answer.headers)

    app.router.add_post("/v1/peer/{message}", handle)
