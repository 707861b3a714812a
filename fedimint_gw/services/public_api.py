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
from fedimint_gw.errors import InvalidInput, NotFound, PaymentRefused
from fedimint_gw.federation.fedimint.lnv2_client import Lnv2FederationClient, outgoing_handle
from fedimint_gw.fedimint.lnv2.gateway_api import (
    CreateBolt11InvoicePayload,
    DescriptionKind,
    PaymentFee,
    RoutingInfo,
    SendOutcome,
    SendOutcomeKind,
    SendPaymentPayload,
)
from fedimint_gw.http.peer import PeerEndpoint
from fedimint_gw.lightning import bolt11
from fedimint_gw.peer.wire import PeerAnswer
from fedimint_gw.services.context import ServiceContext
from fedimint_gw.services.payments.invoices import EXPIRATION_DELTA, InvoiceService
from fedimint_gw.services.payments.send import OutgoingService
from fedimint_gw.store import federations as fed_repo
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
        """v1 send: {federation_id, contract_id, invoice, preimage_auth} -> {preimage}. The
        contract's own version decides what authorizes it: a v2 contract needs v2's `auth`
        here too, whichever route the request took."""
        return await self._authorized_send(body, body.get("auth", body.get("preimage_auth")))

    async def send_payment(self, body: dict[str, Any]) -> dict[str, Any]:
        """v2 send: {federation_id, contract_id, invoice, auth, ...} -> {preimage} or {forfeit_signature}."""
        return await self._authorized_send(body, body.get("auth"))

    async def _authorized_send(self, body: dict[str, Any], auth: object) -> dict[str, Any]:
        """Every send path: the owner's authorization is checked before anything is recorded or
        paid (a refused request changes nothing); the invoice is checked against the contract
        (hash, amount + fee, timelock) by the send flow."""
        try:
            fid = FederationId.parse(body.get("federation_id"))
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        contract_id, invoice = _field(body, "contract_id"), _field(body, "invoice")
        try:  # bad input is refused as such before any federation is asked
            bolt11.decode(invoice)
        except bolt11.Bolt11Error as exc:
            raise InvalidInput(f"invoice: {exc}") from None
        client = self._ctx.federations.client(fid)
        if not await client.check_send_auth(contract_id, invoice, auth):
            self._ctx.log(f"send of contract {contract_id[:16]} refused: not authorized by its owner", "info")
            raise PaymentRefused("the request is not authorized by the contract's owner for this invoice")
        result = await self._outgoing.send(fid.hex, contract_id, invoice)
        return result.to_json()

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

    # --- Fedimint's LNv2 routes at the root (fedimint_gw/http/fedimint_lnv2_routes.py) -------

    async def _lnv2_client(self, federation_id: bytes) -> Lnv2FederationClient | None:
        fed = await fed_repo.get(self._ctx.db.conn, FederationId(federation_id.hex()))
        if fed is None or fed.state is not fed_repo.FederationState.ACTIVE:
            return None
        client = self._ctx.federations.client(fed.federation_id)
        return client if isinstance(client, Lnv2FederationClient) else None

    async def lnv2_routing_info(self, federation_id: bytes) -> RoutingInfo | None:
        """Our routing info for a federation we serve over LNv2, else None (as gatewayd)."""
        client = await self._lnv2_client(federation_id)
        if client is None:
            return None
        fed = await fed_repo.get(self._ctx.db.conn, FederationId(federation_id.hex()))
        if fed is None:  # pragma: no cover - _lnv2_client just read it
            return None
        fee = PaymentFee(fed.fees.base_msat, fed.fees.ppm)
        delta = EXPIRATION_DELTA + self._ctx.config.cltv_margin
        node = await self._ctx.node.info()
        return RoutingInfo(
            lightning_public_key=bytes.fromhex(node.node_id),
            module_public_key=bytes.fromhex(client.gateway_pubkey),
            send_fee_minimum=fee,
            send_fee_default=fee,
            expiration_delta_minimum=delta,
            expiration_delta_default=delta,
            receive_fee=fee,
            lightning_alias=node.alias or None,
        )

    async def lnv2_create_bolt11_invoice(self, payload: CreateBolt11InvoicePayload) -> str:
        """An invoice of our node for the receiver's contract (checked by the LNv2 client)."""
        if await self._lnv2_client(payload.federation_id) is None:
            raise NotFound("this gateway does not serve that federation over LNv2")
        if payload.description.kind is not DescriptionKind.DIRECT:
            raise InvalidInput("only direct descriptions are supported")
        result = await self._invoices.create_bolt11_invoice(
            payload.federation_id.hex(),
            payload.contract.to_json(),
            payload.amount,
            payload.description.value,
            payload.expiry_secs,
        )
        return str(result["invoice"])

    async def lnv2_send_payment(self, payload: SendPaymentPayload) -> SendOutcome:
        """Pay for the sender's contract: its auth is checked first (money rule 7), then the
        ordinary send flow runs on the contract's handle: the preimage, or a forfeit."""
        client = await self._lnv2_client(payload.federation_id)
        if client is None:
            raise NotFound("this gateway does not serve that federation over LNv2")
        handle = outgoing_handle(payload.outpoint, payload.contract)
        if not await client.check_send_auth(handle, payload.bolt11, payload.auth.hex()):
            raise PaymentRefused("auth is not the contract owner's signature over this invoice")
        result = await self._outgoing.send(payload.federation_id.hex(), handle, payload.bolt11)
        if result.preimage:
            return SendOutcome(SendOutcomeKind.PAID, bytes.fromhex(result.preimage))
        if result.forfeit_signature:
            return SendOutcome(SendOutcomeKind.FORFEITED, bytes.fromhex(result.forfeit_signature))
        raise PaymentRefused(result.error or f"the payment ended {result.state.value}")

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
