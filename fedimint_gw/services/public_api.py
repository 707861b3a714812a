"""The public HTTP API's services: what `fedimint_gw.http.app.create_app` serves to wallets.

The gateway builds one `PublicService` at start, once the flow services exist, and hands it
to the app; request bodies are checked here and the work is left to the outgoing and invoice
services. Peer protocol requests go on to the gateway, which answers them while it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fedimint_gw import __version__
from fedimint_gw.domain.ids import FederationId, PaymentHash
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.errors import InvalidInput, PaymentRefused
from fedimint_gw.http.peer import PeerEndpoint
from fedimint_gw.peer.wire import PeerAnswer
from fedimint_gw.services.context import ServiceContext
from fedimint_gw.services.payments.invoices import InvoiceService
from fedimint_gw.services.payments.send import OutgoingService
from fedimint_gw.store import payments as pay_repo


class PublicService:
    """Implements `fedimint_gw.http.app.PublicApi`: ids, info, sends, receives and verification."""

    def __init__(self, ctx: ServiceContext, outgoing: OutgoingService, peers: PeerEndpoint) -> None:
        self._ctx = ctx
        self._outgoing = outgoing
        self._invoices = InvoiceService(ctx)
        self._peers = peers

    async def peer_message(self, message: str, headers: Mapping[str, str], raw: bytes) -> PeerAnswer:
        return await self._peers.peer_message(message, headers, raw)

    async def public_id(self) -> dict[str, Any]:
        return {"gateway_id": (await self._ctx.node.info()).node_id}

    async def public_info(self) -> dict[str, Any]:
        """What any wallet may know: the node and the API. Not the federations served (as
        gatewayd, which stopped publishing its list): a wallet asks about its own federation
        with `routing_info`, and learns of the gateway from its federation."""
        node = await self._ctx.node.info()
        return {
            "version": __version__,
            "lightning_pubkey": node.node_id,
            "network": node.network,
            "api_url": self._ctx.config.api_url,
        }

    async def pay_invoice(self, body: dict[str, Any]) -> dict[str, Any]:
        """v1 send: {federation_id, contract_id, invoice, preimage_auth} -> {preimage}."""
        result = await self._outgoing.send(
            _field(body, "federation_id"), _field(body, "contract_id"), _field(body, "invoice")
        )
        return result.to_json()

    async def send_payment(self, body: dict[str, Any]) -> dict[str, Any]:
        """v2 send: {federation_id, contract_id, invoice, auth, ...} -> {preimage} or {forfeit_signature}."""
        try:
            fid = FederationId.parse(body.get("federation_id"))
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        client = self._ctx.federations.client(fid)
        if not await client.check_send_auth(
            _field(body, "contract_id"), _field(body, "invoice"), body.get("auth")
        ):
            raise PaymentRefused("auth is not the contract owner's signature over this contract and invoice")
        return await self.pay_invoice(body)  # authorised: the rest is the v1 send

    async def routing_info(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._invoices.routing_info(body.get("federation_id"))

    async def create_bolt11_invoice(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._invoices.create_bolt11_invoice(
            body.get("federation_id"),
            body.get("contract"),
            body.get("amount_msat"),
            body.get("description", ""),
            body.get("expiry_secs", 3600),
        )

    async def verify(self, payment_hash: str) -> dict[str, Any]:
        """LNURL-verify style: has a receive with this hash settled?"""
        try:
            h = PaymentHash.parse(payment_hash)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        recs = await pay_repo.by_hash(self._ctx.db.conn, h.hex, PaymentKind.RECEIVE)
        settled = next((r for r in recs if r.state is PaymentState.SUCCEEDED), None)
        return {
            "settled": settled is not None,
            "preimage": settled.preimage if settled else None,
            "known": bool(recs),
        }

    async def fedimint_gateway_id(self) -> str:
        """Fedimint's `GET /id`: the gateway id every LNv1 announcement of ours carries (the node id)."""
        return (await self._ctx.node.info()).node_id

    async def fedimint_pay_invoice(self, body: dict[str, Any]) -> str:
        """Fedimint's LNv1 `POST /pay_invoice`: pay the invoice of the user's outgoing contract;
        the preimage hex, or PaymentRefused (the contract is cancelled so the user refunds)."""
        data = body.get("payment_data")
        if not isinstance(data, dict) or not isinstance(data.get("invoice"), str):
            raise InvalidInput("payment_data must be {invoice: bolt11} (pruned invoices are not supported)")
        result = await self._outgoing.send(
            _field(body, "federation_id"), _field(body, "contract_id"), str(data["invoice"])
        )
        if result.preimage is None:
            raise PaymentRefused(result.error or f"the payment is {result.state.value}")
        return result.preimage


def _field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{name} must be a non-empty string")
    return value
