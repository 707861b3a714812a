"""The receiving end of the peer protocol: authenticate, dispatch, answer signed.

Refusals of tampered, replayed, stale, unsigned or unknown requests are logged here (the
sender's node id and the reason, never the body). Every answer to a request that carried a
nonce is signed with our peer key over the exact bytes sent (docs/peer-protocol.md §3).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fedimint_gw.errors import GatewayError, NotFound, PeerError
from fedimint_gw.peer import wire
from fedimint_gw.peer.errors import peer_code_of
from fedimint_gw.peer.wire import PeerAnswer
from fedimint_gw.services.liquidity.exchange import ExchangeService
from fedimint_gw.services.peering.forwards import ForwardService
from fedimint_gw.services.peering.links import PeerService, json_object
from fedimint_gw.services.peering.settlement import SettleService
from fedimint_gw.store import peers as repo

MESSAGES = (
    "hello",
    "forward",
    "forward_status",
    "ledger",
    "settle_invoice",
    "settled",
    "exchange_quote",
    "exchange",
    "exchange_status",
)


class PeerApi:
    """Turns one signed peer request into a signed answer."""

    def __init__(
        self,
        peers: PeerService,
        forwards: ForwardService,
        settle: SettleService,
        exchanges: ExchangeService,
        log: Callable[[str, str], None],
    ) -> None:
        self._peers = peers
        self._log = log
        Handler = Callable[[repo.PeerRecord, dict[str, Any]], Awaitable[dict[str, Any]]]
        self._handlers: dict[str, Handler] = {
            "forward": forwards.on_forward,
            "forward_status": forwards.on_status,
            "ledger": peers.on_ledger,
            "settle_invoice": settle.on_settle_invoice,
            "settled": settle.on_settled,
            "exchange_quote": exchanges.on_quote,
            "exchange": exchanges.on_exchange,
            "exchange_status": exchanges.on_status,
        }

    async def handle(self, message: str, headers: Mapping[str, str], raw: bytes) -> PeerAnswer:
        """Answer `POST /v1/peer/<message>`; never raises."""
        path = f"/v1/peer/{message}"
        nonce = headers.get(wire.H_NONCE)
        sender = headers.get(wire.H_NODE, "?")
        try:
            if message == "hello":
                result = await self._peers.on_hello(headers, path, raw)
            else:
                handler = self._handlers.get(message)
                if handler is None:
                    raise NotFound(f"no peer message {message!r}")
                peer = await self._peers.authenticate(headers, path, raw)
                result = await handler(peer, json_object(raw))
            status = 200
        except GatewayError as exc:
            code = peer_code_of(exc)
            if isinstance(exc, PeerError):
                self._log(
                    f"peer request {message} from {str(sender)[:16]} refused ({code}): {exc.message}", "warn"
                )
            status = exc.http_status
            result = {
                "error": {
                    "code": exc.code,
                    "name": type(exc).__name__,
                    "message": exc.message,
                    "peer_code": code,
                }
            }
        except Exception as exc:  # the boundary: log it, answer without detail
            self._log(f"peer request {message}: unexpected {exc!r}", "error")
            status = 500
            result = {
                "error": {
                    "code": 2100,
                    "name": "GatewayError",
                    "message": "internal error",
                    "peer_code": "internal",
                }
            }
        body = json.dumps(result, sort_keys=True).encode()
        out = {"Content-Type": "application/json"}
        if nonce is not None and self._peers.node_id:
            try:
                text = wire.response_text(path, self._peers.node_id, nonce, status, body)
                out[wire.H_SIG] = self._peers.key.sign(text)
            except GatewayError:
                pass
        return PeerAnswer(status, body, out)
