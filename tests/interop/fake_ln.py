"""The LNv1 side of the fake federation, and a fake gateway HTTP API: enough for `ln.pay_bolt11_invoice`.

Like FakeMint it checks nothing: it reads the outgoing contract out of the client's transaction and
serves it back as a funded account. The fake gateway records what the client sends it and answers
with a fixed preimage. Shapes observed with the official client are in docs/official-client.md.
"""

from __future__ import annotations

import hashlib
import socket
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.interop import fedimint_testenc as enc
from tests.interop.fake_guardian import LN_INSTANCE, FakeFederation, RpcFailure
from tests.interop.fake_mint import FakeMint

Json = Any


@dataclass(frozen=True)
class OutgoingContract:
    """OutgoingContract{hash, gateway_key, timelock, user_key, cancelled}."""

    hash: bytes
    gateway_key: bytes
    timelock: int
    user_key: bytes
    cancelled: bool

    @property
    def contract_id(self) -> bytes:
        """sha256 of every field but `cancelled` (as the client computes it)."""
        return hashlib.sha256(
            self.hash + self.gateway_key + enc.varint(self.timelock) + self.user_key
        ).digest()

    def to_json(self) -> dict[str, Json]:
        return {
            "hash": self.hash.hex(),
            "gateway_key": self.gateway_key.hex(),
            "timelock": self.timelock,
            "user_key": self.user_key.hex(),
            "cancelled": self.cancelled,
        }


def outgoing_contract_output(item: enc.ModuleItem) -> tuple[int, OutgoingContract] | None:
    """LightningOutput::V0(Contract(ContractOutput{amount, contract: Outgoing(..)})), else None."""
    if item.instance_id != LN_INSTANCE:
        return None
    version, fields = item.variant()
    if version != 0:
        return None
    kind, pos = enc.read_varint(fields, 0)
    length, pos = enc.read_varint(fields, pos)
    body = fields[pos : pos + length]
    if kind != 0:  # 0 = Contract
        return None
    amount, at = enc.read_varint(body, 0)
    contract_kind, at = enc.read_varint(body, at)
    length, at = enc.read_varint(body, at)
    raw = body[at : at + length]
    if contract_kind != 1:  # 0 = Incoming, 1 = Outgoing
        return None
    timelock, end = enc.read_varint(raw, 65)
    contract = OutgoingContract(raw[:32], raw[32:65], timelock, raw[end : end + 33], raw[end + 33] != 0)
    return amount, contract


@dataclass
class FakeLn:
    """LNv1 guardian endpoints: list_gateways, block_count, account, await_account."""

    fed: FakeFederation
    mint: FakeMint
    gateways: list[dict[str, Json]] = field(default_factory=list)
    block_count: int = 100

    def install(self) -> FakeLn:
        prefix = f"module_{LN_INSTANCE}_"
        self.fed.handlers[prefix + "list_gateways"] = lambda _peer, _params: self.gateways
        self.fed.handlers[prefix + "block_count"] = lambda _peer, _params: self.block_count
        self.fed.handlers[prefix + "account"] = self.account
        self.fed.handlers[prefix + "await_account"] = self.await_account
        return self

    def contracts(self) -> dict[str, tuple[int, OutgoingContract]]:
        """Outgoing contracts funded by the accepted transactions, by contract id hex."""
        found = {}
        for tx in self.mint.transactions.values():
            for item in tx.outputs:
                output = outgoing_contract_output(item)
                if output is not None:
                    found[output[1].contract_id.hex()] = output
        return found

    async def await_account(self, peer: int, params: Json) -> Json:
        """Like `account`, but waits for the contract to be funded first."""
        await self.mint.wait_until(lambda: str(params) in self.contracts())
        return self.account(peer, params)

    def account(self, _peer: int, params: Json) -> Json:
        """ContractAccount JSON: {"amount": msat, "contract": {"Outgoing": {...}}}."""
        output = self.contracts().get(str(params))
        if output is None:
            raise RpcFailure(f"no contract {params!r}")
        amount, contract = output
        return {"amount": amount, "contract": {"Outgoing": contract.to_json()}}


@dataclass
class FakeGatewayApi:
    """A gateway's public HTTP API at the root path: GET /id, POST /pay_invoice."""

    gateway_id: str
    preimage: bytes
    requests: list[tuple[str, str, Json]] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def start(self) -> FakeGatewayApi:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        self.port = int(listener.getsockname()[1])
        await web.SockSite(self._runner, listener).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        self.requests.append((request.method, request.path, body))
        if request.method == "GET" and request.path == "/id":
            return web.json_response(self.gateway_id)
        if request.method == "POST" and request.path == "/pay_invoice":
            return web.json_response(self.preimage.hex())
        return web.Response(status=404, text="unknown route")
