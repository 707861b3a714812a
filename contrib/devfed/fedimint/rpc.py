"""One guardian's Fedimint API: JSON-RPC 2.0 over a WebSocket at the guardian's URL (``/``).

Wire (jsonrpsee, as Fedimint's client speaks it): ``{"jsonrpc": "2.0", "id": n, "method": m,
"params": [{"auth": null, "params": p}]}``; module endpoints are ``module_{instance}_{name}``.
Consensus values travel as hex of their consensus encoding. Requests on one socket are served
concurrently (the ``await_*`` endpoints block until their answer exists, up to a bound).
A method devfed does not serve is answered -32601 and logged at WARNING with its params, so
what a client needs and is missing shows up loudly.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from contrib.devfed.fedimint.consensus import NoConsensus
from contrib.devfed.fedimint.keys import LNV2_INSTANCE_ID
from contrib.devfed.fedimint.ln import LN_INSTANCE_ID
from contrib.devfed.fedimint.ln_rpc import LnAwaitTimeout, LnEndpoints
from contrib.devfed.fedimint.lnv2_rpc import Lnv2Endpoints
from contrib.devfed.fedimint.mint import FaultMode
from fedimint_gw.fedimint import json_fields as jf
from fedimint_gw.fedimint.encoding import encode
from fedimint_gw.fedimint.errors import DecodeError
from fedimint_gw.fedimint.ln.items import write_ln_outcome
from fedimint_gw.fedimint.serde_value import from_serde, to_serde
from fedimint_gw.fedimint.transaction import TXID_LEN

if TYPE_CHECKING:
    from contrib.devfed.fedimint.server import FedimintFederation

log = logging.getLogger("devfed.fedimint")
Endpoint = Callable[[object], Awaitable[object]]

METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
NOT_FOUND = 404
TIMEOUT = 408
NO_CONSENSUS = 503
INTERNAL_ERROR = -32603


class RpcError(Exception):
    """An error answer: JSON-RPC code and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _txid(value: object, what: str) -> bytes:
    return jf.hex_bytes(value, what, TXID_LEN)


class GuardianRpc:
    """The endpoints of guardian ``peer_id``; signing uses only that guardian's shares."""

    def __init__(self, federation: FedimintFederation, peer_id: int) -> None:
        self.fed = federation
        self.peer_id = peer_id
        self.guardian = federation.guardians[peer_id]
        mint = federation.mint_instance_id
        self.endpoints: dict[str, Endpoint] = {
            "version": self.version,
            "client_config": self.client_config,
            "api_announcements": self.api_announcements,
            "session_count": self.session_count,
            "submit_transaction": self.submit_transaction,
            "await_transaction": self.await_transaction,
            "await_output_outcome": self.await_output_outcome,
            "federation_id": self.federation_id,
            "invite_code": self.invite_code,
            f"module_{mint}_note_spent": self.note_spent,
            f"module_{mint}_blind_nonce_used": self.blind_nonce_used,
        }
        if federation.lnv2 is not None:
            lnv2 = Lnv2Endpoints(
                federation.lnv2,
                federation.lnv2_guardians[peer_id],
                lambda: self.fed.await_timeout,
                RpcError,
            )
            self.endpoints.update(lnv2.endpoints(LNV2_INSTANCE_ID))
        if federation.ln is not None:
            self.endpoints.update(LnEndpoints(federation, federation.ln).table())

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        """Serve requests until the client closes (an offline guardian closes at once)."""
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=16 * 1024 * 1024)
        await ws.prepare(request)
        if self.guardian.fault is FaultMode.OFFLINE:
            await ws.close()
            return ws
        tasks: set[asyncio.Task[None]] = set()
        self.fed.sockets.add(ws)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    task = asyncio.create_task(self._answer(ws, msg.data))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
        finally:
            self.fed.sockets.discard(ws)
            for task in tasks:
                task.cancel()
        return ws

    async def _answer(self, ws: web.WebSocketResponse, text: str) -> None:
        try:
            raw = json.loads(text)
        except ValueError:
            await ws.send_json(_error(None, -32700, "parse error"))
            return
        batch = raw if isinstance(raw, list) else [raw]
        answers = [await self.handle(item) for item in batch]
        if not ws.closed:
            await ws.send_json(answers if isinstance(raw, list) else answers[0])

    async def handle(self, request: object) -> dict[str, object]:
        """Answer one JSON-RPC request object (never raises)."""
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return _error(None, -32600, "not a JSON-RPC request")
        request_id, method = request.get("id"), str(request["method"])
        params = request.get("params")
        inner = (
            params[0].get("params")
            if isinstance(params, list) and params and isinstance(params[0], dict)
            else None
        )
        endpoint = self.endpoints.get(method)
        if endpoint is None:
            log.warning(
                "guardian %d: UNSERVED Fedimint method %r params=%.300s", self.peer_id, method, params
            )
            self.fed.unserved.append(method)
            return _error(request_id, METHOD_NOT_FOUND, f"Method not found: {method}")
        if self.guardian.fault is FaultMode.OFFLINE:
            return _error(request_id, -32000, f"guardian {self.peer_id} is offline")
        if self.guardian.fault is FaultMode.SILENT:  # a hung guardian: the client's timeout decides
            await asyncio.Event().wait()
        try:
            result = await endpoint(inner)
        except DecodeError as exc:
            log.info("guardian %d: bad %s request: %s", self.peer_id, method, exc.message)
            return _error(request_id, INVALID_PARAMS, exc.message)
        except RpcError as exc:
            log.info("guardian %d: %s: %s", self.peer_id, method, exc.message)
            return _error(request_id, exc.code, exc.message)
        except LnAwaitTimeout:
            return _error(request_id, TIMEOUT, f"{method}: the awaited state was not reached (yet)")
        except NoConsensus as exc:
            log.info("guardian %d: %s: %s", self.peer_id, method, exc)
            return _error(request_id, NO_CONSENSUS, str(exc))
        except Exception:  # a devfed bug: answer it, never leave the client waiting
            log.exception("guardian %d: %s failed", self.peer_id, method)
            return _error(request_id, INTERNAL_ERROR, f"internal error in {method}")
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    async def version(self, params: object) -> object:
        """`SupportedApiVersionsSummary`."""
        return self.fed.api_versions.to_json()

    async def client_config(self, params: object) -> object:
        """The client config JSON."""
        return self.fed.client_config.to_json()

    async def api_announcements(self, params: object) -> object:
        """Signed API URL announcements by peer: devfed makes none (the config's URLs hold)."""
        return {}

    async def session_count(self, params: object) -> object:
        """Finished sessions (one accepted transaction each)."""
        return self.fed.store.session_count()

    async def federation_id(self, params: object) -> object:
        return self.fed.federation_id.hex

    async def invite_code(self, params: object) -> object:
        return self.fed.invite_code

    async def submit_transaction(self, params: object) -> object:
        """The `TransactionSubmissionOutcome` (both as `SerdeModuleEncoding`)."""
        outcome = await self.fed.sequencer.submit(from_serde(params, "transaction"))
        return to_serde(encode(outcome.write))

    async def await_transaction(self, params: object) -> object:
        """The txid (hex) once the transaction is accepted."""
        txid = _txid(params, "txid")
        try:
            await self.fed.sequencer.await_accepted(txid, self.fed.await_timeout)
        except (TimeoutError, asyncio.TimeoutError):
            raise RpcError(TIMEOUT, f"transaction {txid.hex()} is not accepted (yet)") from None
        return txid.hex()

    async def await_output_outcome(self, params: object) -> object:
        """This guardian's `DynOutputOutcome` (`SerdeModuleEncoding`) for a mint output: its own
        signature share."""
        data = jf.obj(params, "out point")
        txid = _txid(jf.field(data, "txid", "out point"), "out point.txid")
        out_idx = jf.integer(jf.field(data, "out_idx", "out point"), "out point.out_idx", 2**64 - 1)
        try:
            out = await self.fed.sequencer.await_output(txid, out_idx, self.fed.await_timeout)
        except (TimeoutError, asyncio.TimeoutError):
            raise RpcError(TIMEOUT, f"transaction {txid.hex()} is not accepted (yet)") from None
        except KeyError as exc:
            ln_outcome = self.fed.ln.store.outcome(txid, out_idx) if self.fed.ln is not None else None
            if ln_outcome is None:
                raise RpcError(NOT_FOUND, str(exc)) from None
            body = encode(lambda w: write_ln_outcome(w, ln_outcome))
            return to_serde(encode(lambda w: w.dyn(LN_INSTANCE_ID, body)))
        if self.guardian.fault is FaultMode.UNSIGNING:
            raise RpcError(TIMEOUT, f"guardian {self.peer_id} signs no notes (fault injected)")
        outcome = self.guardian.sign(out.amount_msat, out.blind_nonce)
        return to_serde(encode(lambda w: w.dyn(self.fed.mint_instance_id, outcome)))

    async def note_spent(self, params: object) -> object:
        """Whether a note nonce (hex, 33 bytes) is spent."""
        return self.fed.store.spent_by(jf.hex_bytes(params, "nonce", 33)) is not None

    async def blind_nonce_used(self, params: object) -> object:
        """Whether a blind nonce (hex, 48 bytes) was signed already."""
        return self.fed.store.blind_nonce_used(jf.hex_bytes(params, "blind nonce", 48))


def _error(request_id: object, code: int, message: str) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}
