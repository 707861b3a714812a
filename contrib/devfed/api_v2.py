"""API v2: JSON-RPC 2.0 over a WebSocket at ``{guardian url}/v2/ws``.

One request per text frame: ``{"jsonrpc": "2.0", "id": ..., "method": ..., "params": {...}}``.
Errors: JSON-RPC ``-32700`` (parse), ``-32600`` (invalid request), ``-32601`` (unknown method),
``-32602`` (invalid params); federation errors use their devfed numeric code. Every error
carries ``data.name``, the stable error name.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import WSMsgType, web

from contrib.devfed import faults
from contrib.devfed.api_v1 import version_body
from contrib.devfed.codec import as_object, get_hex, parse_json
from contrib.devfed.errors import DevfedError, ErrorCode
from contrib.devfed.federation import Federation

Params = Mapping[str, object]
Method = Callable[[Params], Awaitable[object]]

_ENVELOPE_CODES = {
    ErrorCode.MALFORMED_JSON: -32700,
    ErrorCode.UNKNOWN_METHOD: -32601,
    ErrorCode.INVALID_REQUEST: -32602,
}


def rpc_error(request_id: object, exc: DevfedError, code: int | None = None) -> dict[str, object]:
    """A JSON-RPC error response."""
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "error": {
            "code": code if code is not None else _ENVELOPE_CODES.get(exc.code, exc.code.code),
            "message": exc.message,
            "data": {"name": exc.code.error_name, "devfed_code": exc.code.code},
        },
    }


class V2Rpc:
    """One guardian's v2 JSON-RPC methods."""

    def __init__(self, federation: Federation, peer_id: int) -> None:
        self.fed = federation
        self.peer_id = peer_id
        self.methods: dict[str, Method] = {
            "version": self.version,
            "config": self.config,
            "submit_transaction": self.submit_transaction,
            "transaction_status": self.transaction_status,
            "signature_shares": self.signature_shares,
            "contract": self.contract,
            "decryption_share": self.decryption_share,
            "gateways": self.gateways,
            "block_height": self.block_height,
            "faucet": self.faucet,
        }

    def add_to(self, app: web.Application) -> None:
        """Register ``GET /v2/ws``."""
        app.router.add_get("/v2/ws", self.websocket)

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        """Serve JSON-RPC requests until the client closes."""
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                await ws.send_json(await self.handle(msg.data))
            elif msg.type is WSMsgType.BINARY:
                await ws.send_json(rpc_error(None, DevfedError(ErrorCode.MALFORMED_JSON, "send text frames")))
        return ws

    async def handle(self, text: str) -> dict[str, object]:
        """Answer one request frame (never raises)."""
        request_id: object = None
        try:
            raw = parse_json(text)
            if (
                not isinstance(raw, dict)
                or raw.get("jsonrpc") != "2.0"
                or not isinstance(raw.get("method"), str)
            ):
                return rpc_error(
                    raw.get("id") if isinstance(raw, dict) else None,
                    DevfedError(ErrorCode.INVALID_REQUEST, "not a JSON-RPC 2.0 request"),
                    -32600,
                )
            request_id = raw.get("id")
            method = self.methods.get(str(raw["method"]))
            if method is None:
                raise DevfedError(ErrorCode.UNKNOWN_METHOD, f"unknown method {raw['method']!r}")
            params = as_object(raw.get("params", {}), "params")
            guardian = self.fed.guardian(self.peer_id)
            if not guardian.online:
                raise DevfedError(ErrorCode.GUARDIAN_OFFLINE, f"guardian {self.peer_id} is offline")
            if guardian.fault.delay_ms:
                await asyncio.sleep(guardian.fault.delay_ms / 1000)
            result = await method(params)
        except DevfedError as exc:
            return rpc_error(request_id, exc)
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    async def version(self, params: Params) -> object:
        """``version`` → ``{"majors": [...]}``."""
        return version_body(self.fed)

    async def config(self, params: Params) -> object:
        """``config`` → ``{"federation_id": hex, "config": {...}}``."""
        return {"federation_id": self.fed.federation_id, "config": self.fed.config.to_dict()}

    async def submit_transaction(self, params: Params) -> object:
        """``submit_transaction {transaction}`` → ``{"txid", "accepted": true, "height"}``."""
        result = await faults.submit(self.fed, self.peer_id, params.get("transaction"))
        return {"txid": result["txid"], "accepted": True, "height": result["height"]}

    async def transaction_status(self, params: Params) -> object:
        """``transaction_status {txid}`` → ``{"txid", "accepted": true, "height"}``."""
        _, result = self.fed.sequencer.transaction(get_hex(params, "txid", "params", 32))
        return {"txid": result["txid"], "accepted": True, "height": result["height"]}

    async def faucet(self, params: Params) -> object:
        """``faucet {outputs}`` → like ``submit_transaction``."""
        tx = {"inputs": [], "outputs": params.get("outputs")}
        result = await self.fed.sequencer.submit(tx, faucet=True)
        return {"txid": result["txid"], "accepted": True, "height": result["height"]}

    async def signature_shares(self, params: Params) -> object:
        """``signature_shares {txid}`` → ``{"peer": p, "shares": {"<out_idx>": {index, C_, dleq}}}``."""
        shares = faults.signature_shares(self.fed, self.peer_id, get_hex(params, "txid", "params", 32))
        return {"peer": self.peer_id, "shares": {str(j): s.to_dict() for j, s in shares}}

    async def contract(self, params: Params) -> object:
        """``contract {contract_id}`` → the contract view."""
        return faults.contract(self.fed, self.peer_id, get_hex(params, "contract_id", "params", 32))

    async def decryption_share(self, params: Params) -> object:
        """``decryption_share {contract_id}`` → ``{"peer": p, "share": {index, D, dleq}}``."""
        share = faults.decryption_share(self.fed, self.peer_id, get_hex(params, "contract_id", "params", 32))
        return {"peer": self.peer_id, "share": share.to_dict()}

    async def gateways(self, params: Params) -> object:
        """``gateways`` → the admin-vetted gateway API URLs (a list of strings)."""
        return self.fed.store.vetted_gateways()

    async def block_height(self, params: Params) -> object:
        """``block_height`` → an integer."""
        return await faults.block_height(self.fed, self.peer_id)
