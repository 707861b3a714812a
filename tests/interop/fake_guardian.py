"""A small fake Fedimint federation for the official client: WebSocket JSON-RPC guardians on 127.0.0.1.

It is a probe, not a federation: every guardian answers from fixed data (the client config, API
versions, session count, ...) and records every call it receives, so tests can state exactly which
methods, params and answers the official client uses. Tests replace or add handlers per method.
No consensus, no transactions unless a test installs handlers for them.

Wire (jsonrpsee, as the client speaks it): request {"jsonrpc": "2.0", "id": n, "method": m,
"params": [{"auth": null | secret, "params": <json>}]}; answer {"jsonrpc": "2.0", "id": n,
"result": <json>} or {"jsonrpc": "2.0", "id": n, "error": {"code", "message"}}.
Module endpoints are named "module_<instance id>_<endpoint>".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.interop import fedimint_testenc as enc
from tests.interop import tbs_vectors

Json = Any
Handler = Callable[[int, Json], Json | Awaitable[Json]]

# The official WASM client makes module instance 1 its primary module (get_balance etc. trap with
# "unreachable" otherwise), as fedimintd's default layout does: 0 = ln, 1 = mint, 2 = wallet.
MINT_INSTANCE = 1
MINT_DENOMINATIONS = tuple(1 << i for i in range(20))  # 1 msat .. 2^19 msat
METHOD_NOT_FOUND = -32601
CALL_FAILED = -32000  # jsonrpsee's "call execution failed" / application error code


class RpcFailure(Exception):
    """Raised by a handler: the guardian answers a JSON-RPC error."""

    def __init__(self, message: str, code: int = CALL_FAILED) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RpcCall:
    """One request a guardian received."""

    peer: int
    method: str
    params: Json  # the raw "params" of the JSON-RPC request
    answered: str  # "result" | "error" | "no answer"

    @property
    def inner(self) -> Json:
        """The "params" inside the ApiRequest wrapper, when the request has that shape."""
        if isinstance(self.params, list) and len(self.params) == 1 and isinstance(self.params[0], dict):
            return self.params[0].get("params")
        return None

    @property
    def auth(self) -> Json:
        """The "auth" of the ApiRequest wrapper."""
        if isinstance(self.params, list) and len(self.params) == 1 and isinstance(self.params[0], dict):
            return self.params[0].get("auth")
        return None


@dataclass
class FakeGuardian:
    """One guardian's listener."""

    peer: int
    runner: web.AppRunner
    port: int

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"


def mint_module(instance_id: int = MINT_INSTANCE, peers: int = 1) -> dict[str, Json]:
    """A mint module config entry with the vector keys (aggregate key and the first `peers` shares)."""
    if peers == 1:  # the 1-of-1 keyset: the only share is the aggregate key
        shares = {0: tbs_vectors.AGGREGATE_PK}
    elif peers <= len(tbs_vectors.PEER_PK_SHARES):
        shares = {peer: tbs_vectors.PEER_PK_SHARES[peer] for peer in range(peers)}
    else:
        raise ValueError(f"the vector keyset has {len(tbs_vectors.PEER_PK_SHARES)} peers, not {peers}")
    inner = enc.mint_client_config(
        denominations=MINT_DENOMINATIONS, aggregate_pk=tbs_vectors.AGGREGATE_PK, peer_pk_shares=shares
    )
    return enc.client_module_config("mint", instance_id, (2, 0), inner)


LN_INSTANCE = 0
G1_GENERATOR = bytes.fromhex(
    "97f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb"
)
REGTEST_MAGIC = bytes.fromhex("fabfb5da")


def ln_module(instance_id: int = LN_INSTANCE, threshold_pub_key: bytes = G1_GENERATOR) -> dict[str, Json]:
    """An LNv1 module config entry: LightningClientConfig{threshold_pub_key (48-byte G1),
    fee_consensus{contract_input, contract_output}, network (magic as a little-endian u32)}."""
    network = int.from_bytes(REGTEST_MAGIC, "little")
    inner = threshold_pub_key + enc.varint(0) + enc.varint(0) + enc.varint(network)
    return enc.client_module_config("ln", instance_id, (2, 0), inner)


def module_api_versions(
    core: tuple[int, int] = (2, 0), module: tuple[int, int] = (2, 0), api: tuple[int, int] = (0, 1)
) -> dict[str, Json]:
    """One module's entry in the `version` answer."""
    return {"core_consensus": _version(core), "module_consensus": _version(module), "api": [_version(api)]}


@dataclass
class FakeFederation:
    """n guardians serving one client config; `calls` records what every guardian was asked."""

    peers: int = 1
    name: str = "fedimint-gw interop probe"
    core_consensus: tuple[int, int] = (2, 0)
    core_api: tuple[int, int] = (0, 5)
    with_mint: bool = True
    modules: dict[int, dict[str, Json]] = field(default_factory=dict)
    module_versions: dict[int, dict[str, Json]] = field(default_factory=dict)
    session_count: int = 0
    calls: list[RpcCall] = field(default_factory=list)
    handlers: dict[str, Handler] = field(default_factory=dict)
    guardians: list[FakeGuardian] = field(default_factory=list)
    sockets: set[web.WebSocketResponse] = field(default_factory=set)
    connections: int = 0
    _recorded: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        """Bind every guardian on an ephemeral 127.0.0.1 port."""
        if self.with_mint and MINT_INSTANCE not in self.modules:
            self.modules[MINT_INSTANCE] = mint_module(MINT_INSTANCE, self.peers)
            self.module_versions.setdefault(MINT_INSTANCE, module_api_versions())
        for peer in range(self.peers):
            app = web.Application()
            app.router.add_get("/", self._ws_handler(peer))
            runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
            await runner.setup()
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.bind(("127.0.0.1", 0))
            port = int(listener.getsockname()[1])
            await web.SockSite(runner, listener).start()
            self.guardians.append(FakeGuardian(peer, runner, port))
        for method, handler in self.default_handlers().items():
            self.handlers.setdefault(method, handler)

    async def stop(self) -> None:
        """Close the client connections, then every listener."""
        await self.drop_connections()
        for guardian in self.guardians:
            await guardian.runner.cleanup()

    async def take_offline(self, peer: int) -> None:
        """Close guardian `peer`'s listener: connections to it are refused from now on."""
        await self.guardians[peer].runner.cleanup()

    async def drop_connections(self, code: int = 1001) -> None:
        """Close every open client WebSocket (code 1001 "going away"), as a restarting guardian would."""
        sockets, self.sockets = list(self.sockets), set()
        for ws in sockets:
            with contextlib.suppress(asyncio.TimeoutError, ConnectionError):
                await asyncio.wait_for(ws.close(code=code), 2.0)

    # ---- the data served -------------------------------------------------------------------

    @property
    def api_endpoints(self) -> dict[int, enc.PeerEndpoint]:
        return {g.peer: enc.PeerEndpoint(g.url, f"guardian-{g.peer}") for g in self.guardians}

    @property
    def federation_id(self) -> bytes:
        return enc.federation_id(self.api_endpoints)

    def invite_code(self, peer: int = 0) -> str:
        """An invite naming one guardian."""
        return enc.encode_invite({peer: self.guardians[peer].url}, self.federation_id)

    def client_config(self) -> dict[str, Json]:
        """The client config JSON (`client_config` answer): the global fields at the top level."""
        return {
            "api_endpoints": {
                str(peer): {"url": e.url, "name": e.name} for peer, e in self.api_endpoints.items()
            },
            "consensus_version": _version(self.core_consensus),
            "meta": {"federation_name": self.name},
            "modules": {str(i): m for i, m in self.modules.items()},
        }

    def api_versions(self) -> dict[str, Json]:
        """The `version` answer (SupportedApiVersionsSummary)."""
        return {
            "core": {"core_consensus": _version(self.core_consensus), "api": [_version(self.core_api)]},
            "modules": {str(i): v for i, v in self.module_versions.items()},
        }

    def default_handlers(self) -> dict[str, Handler]:
        return {
            "version": lambda _peer, _params: self.api_versions(),
            "client_config": lambda _peer, _params: self.client_config(),
            "session_count": lambda _peer, _params: self.session_count,
        }

    def calls_to(self, method: str) -> list[RpcCall]:
        return [c for c in self.calls if c.method == method]

    def methods_called(self) -> list[str]:
        """Methods in first-call order, each once."""
        return list(dict.fromkeys(c.method for c in self.calls))

    # ---- the wire --------------------------------------------------------------------------

    def _ws_handler(self, peer: int) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            self.sockets.add(ws)
            self.connections += 1
            tasks: set[asyncio.Task[None]] = set()
            try:
                async for message in ws:
                    if message.type != WSMsgType.TEXT:
                        continue
                    task = asyncio.create_task(self._answer(peer, ws, message.data))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            finally:
                self.sockets.discard(ws)
                for task in list(tasks):
                    task.cancel()
            return ws

        return handle

    async def _answer(self, peer: int, ws: web.WebSocketResponse, raw: str) -> None:
        try:
            request = json.loads(raw)
        except ValueError:
            return
        requests = request if isinstance(request, list) else [request]
        for req in requests:
            answer = await self._dispatch(peer, req)
            if answer is not None and not ws.closed:
                await ws.send_str(json.dumps(answer))

    async def _dispatch(self, peer: int, req: dict[str, Json]) -> dict[str, Json] | None:
        method, params, req_id = req.get("method"), req.get("params"), req.get("id")
        handler = self.handlers.get(str(method))
        outcome: dict[str, Json]
        if handler is None:
            outcome = {"error": {"code": METHOD_NOT_FOUND, "message": "Method not found"}}
        else:
            inner = RpcCall(peer, str(method), params, "").inner
            try:
                result = handler(peer, inner)
                if isinstance(result, Awaitable):
                    result = await result
                outcome = {"result": result}
            except RpcFailure as failure:
                outcome = {"error": {"code": failure.code, "message": failure.message}}
            except asyncio.CancelledError:
                self._record(RpcCall(peer, str(method), params, "no answer"))
                raise
        self._record(RpcCall(peer, str(method), params, next(iter(outcome))))
        if req_id is None:
            return None
        return {"jsonrpc": "2.0", "id": req_id, **outcome}

    def _record(self, call: RpcCall) -> None:
        self.calls.append(call)
        self._recorded.set()

    async def wait_for_calls(self, method: str, count: int = 1, *, timeout: float = 20.0) -> list[RpcCall]:
        """Wait until `method` has been called (and answered) at least `count` times."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(self.calls_to(method)) < count:
            self._recorded.clear()
            try:
                await asyncio.wait_for(self._recorded.wait(), max(deadline - loop.time(), 0))
            except asyncio.TimeoutError:
                seen = [c.method for c in self.calls]
                raise TimeoutError(
                    f"{method} called {len(self.calls_to(method))}/{count} times: {seen}"
                ) from None
        return self.calls_to(method)


def _version(pair: tuple[int, int]) -> dict[str, int]:
    return {"major": pair[0], "minor": pair[1]}
