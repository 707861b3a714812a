"""One guardian's API: JSON-RPC 2.0 over a WebSocket, as Fedimint's client speaks it.

Wire format (`fedimint-api-client/src/api/ws.rs`, jsonrpsee; `ApiRequest` in
`fedimint-core/src/module/mod.rs`):
    -> {"jsonrpc": "2.0", "id": n, "method": m, "params": [{"auth": null | "<password>", "params": p}]}
    <- {"jsonrpc": "2.0", "id": n, "result": r} | {"jsonrpc": "2.0", "id": n, "error": {code, message}}
`m` is the endpoint name for core endpoints and `module_{instance_id}_{endpoint}` for module
endpoints. An API secret, when the federation has one, goes in HTTP Basic auth as
`fedimint:<secret>` on the WebSocket upgrade.

The connection is opened on first use, multiplexes concurrent calls by id, and is reopened on
a later call after it drops (not sooner than `reconnect_delay` after a failed attempt, growing
up to `max_reconnect_delay`). Every call has a timeout. Session and clock are injected.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp

from fedimint_gw.fedimint.errors import GuardianRpcError


def module_method(module_instance_id: int, endpoint: str) -> str:
    """The JSON-RPC method name of a module endpoint."""
    return f"module_{module_instance_id}_{endpoint}"


@dataclass(frozen=True)
class TransportSettings:
    """Timeouts (seconds) and limits for guardian connections."""

    call_timeout: float = 10.0
    connect_timeout: float = 5.0
    reconnect_delay: float = 0.5
    max_reconnect_delay: float = 30.0
    max_message_bytes: int = 16_000_000


class GuardianConnection:
    """A lazily (re)opened JSON-RPC WebSocket to one guardian."""

    def __init__(
        self,
        peer_id: int,
        url: str,
        session: aiohttp.ClientSession,
        settings: TransportSettings,
        *,
        api_secret: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.peer_id = peer_id
        self.url = url
        self._session = session
        self._settings = settings
        self._api_secret = api_secret
        self._monotonic = monotonic
        self._ws: aiohttp.ClientWebSocketResponse[bool] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[object]] = {}
        self._next_id = 0
        self._connect_lock = asyncio.Lock()
        self._retry_at = 0.0
        self._delay = settings.reconnect_delay
        self.connects = 0
        """How many times a connection was opened (for tests and metrics)."""

    async def request(
        self, method: str, params: object, *, auth: str | None = None, timeout: float | None = None
    ) -> object:
        """Call `method` and return its `result`; GuardianRpcError on any failure or timeout."""
        limit = self._settings.call_timeout if timeout is None else timeout
        try:
            return await asyncio.wait_for(self._call(method, params, auth), limit)
        except asyncio.TimeoutError:
            raise GuardianRpcError(
                f"guardian {self.peer_id} did not answer {method} within {limit}s"
            ) from None

    async def _call(self, method: str, params: object, auth: str | None) -> object:
        ws = await self._connected()
        self._next_id += 1
        request_id = self._next_id
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        message = {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": method,
            "params": [{"auth": auth, "params": params}],
        }
        try:
            await ws.send_str(json.dumps(message))
            return await future
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            raise GuardianRpcError(f"guardian {self.peer_id}: sending {method} failed: {exc}") from None
        finally:
            self._pending.pop(request_id, None)

    async def _connected(self) -> aiohttp.ClientWebSocketResponse[bool]:
        async with self._connect_lock:
            if self._ws is not None and not self._ws.closed:
                return self._ws
            now = self._monotonic()
            if now < self._retry_at:
                raise GuardianRpcError(
                    f"guardian {self.peer_id} is unreachable; retrying in {self._retry_at - now:.1f}s"
                )
            headers = {}
            if self._api_secret is not None:
                token = base64.b64encode(f"fedimint:{self._api_secret}".encode()).decode("ascii")
                headers["Authorization"] = f"Basic {token}"
            try:
                ws = await asyncio.wait_for(
                    self._session.ws_connect(
                        self.url,
                        headers=headers,
                        max_msg_size=self._settings.max_message_bytes,
                        autoping=True,
                    ),
                    self._settings.connect_timeout,
                )
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
                self._retry_at = self._monotonic() + self._delay
                self._delay = min(self._delay * 2, self._settings.max_reconnect_delay)
                raise GuardianRpcError(f"cannot connect to guardian {self.peer_id}: {exc}") from None
            self._ws = ws
            self._delay = self._settings.reconnect_delay
            self.connects += 1
            self._reader = asyncio.create_task(self._read_loop(ws))
            return ws

    async def _read_loop(self, ws: aiohttp.ClientWebSocketResponse[bool]) -> None:
        try:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    self._dispatch(msg.data)
                elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSE):
                    break
        finally:
            error = GuardianRpcError(f"connection to guardian {self.peer_id} closed")
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(error)

    def _dispatch(self, text: str) -> None:
        try:
            message = json.loads(text)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        request_id = message.get("id")
        future = self._pending.get(request_id) if isinstance(request_id, int) else None
        if future is None or future.done():
            return
        if "error" in message:
            error = message["error"]
            code = error.get("code") if isinstance(error, dict) else None
            text_msg = error.get("message") if isinstance(error, dict) else None
            future.set_exception(
                GuardianRpcError(
                    f"guardian {self.peer_id} answered an error: {text_msg!s:.300}",
                    code if isinstance(code, int) else None,
                )
            )
        elif "result" in message:
            future.set_result(message["result"])
        else:
            future.set_exception(GuardianRpcError(f"guardian {self.peer_id} sent a response without result"))

    async def close(self) -> None:
        """Close the socket and stop the reader."""
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
