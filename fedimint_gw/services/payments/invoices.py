"""API v2 receives: routing info, and invoices the gateway's node signs for a user's contract.

Anyone can ask for such an invoice, so a registration is bounded: its payment hash must be
unknown to lightningd, it lives only as long as its invoice (plus `REGISTRATION_GRACE`, then
`prune_expired` deletes it), at most `MAX_REGISTRATIONS` wait at once, and the same request
made many times at once gets one invoice.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

from fedimint_gw.domain.amount import Msat
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.errors import AlreadyExists, InvalidInput, NotFound, NotReady
from fedimint_gw.federation.client import Feature, IncomingRequest
from fedimint_gw.lightning import bolt11
from fedimint_gw.services.context import ServiceContext
from fedimint_gw.services.payments.requests import request_json
from fedimint_gw.store import federations as fed_repo
from fedimint_gw.store import payments as repo

CURRENCY = {"bitcoin": "bc", "testnet": "tb", "testnet4": "tb", "signet": "tbs", "regtest": "bcrt"}
MAX_EXPIRY_SECS = 86_400
EXPIRATION_DELTA = 144  # blocks a v2 incoming contract should stay valid, as advertised
MAX_DESCRIPTION_BYTES = 639  # the most a bolt11 `d` field holds (UTF-8 bytes, not characters)
MAX_REGISTRATIONS = 10_000  # registered payment hashes at once; more are refused (503)
REGISTRATION_GRACE = 600  # seconds an expired, unpaid registration is kept before it is pruned


class InvoiceService:
    """Creates node-signed invoices for v2 receives and registers their payment hashes."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._config = ctx.config
        self._db = ctx.db
        self._node = ctx.node
        self._feds = ctx.federations
        self._router = ctx.router
        self._clock = ctx.clock
        self._registering = asyncio.Lock()  # one check-sign-save at a time: one invoice per hash
        self._controls = ctx.controls

    async def _federation(self, federation_id: object) -> fed_repo.FederationRecord:
        try:
            fid = FederationId.parse(federation_id)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        fed = await fed_repo.get(self._db.conn, fid)
        if fed is None or fed.state is not fed_repo.FederationState.ACTIVE:
            raise NotFound(f"this gateway does not serve federation {fid.hex}")
        return fed

    async def routing_info(self, federation_id: object) -> dict[str, Any]:
        """What a v2 wallet needs before it builds a contract for this gateway."""
        fed = await self._federation(federation_id)
        client = self._feds.client(fed.federation_id)
        info = await self._node.info()
        fees = {"base_msat": fed.fees.base_msat, "ppm": fed.fees.ppm}
        return {
            "lightning_pubkey": info.node_id,
            "module_pubkey": client.gateway_pubkey,
            "send_fee": fees,
            "receive_fee": fees,
            "expiration_delta": EXPIRATION_DELTA,
        }

    async def create_bolt11_invoice(
        self,
        federation_id: object,
        contract: object,
        amount_msat: object,
        description: object,
        expiry_secs: object,
    ) -> dict[str, Any]:
        """Check the user's contract, sign an invoice paying our node, register its hash."""
        fed = await self._federation(federation_id)
        if not isinstance(contract, dict):
            raise InvalidInput("contract must be a JSON object")
        try:
            amount = Msat.parse(amount_msat)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        if amount.value <= 0:
            raise InvalidInput("amount_msat must be positive")
        await self._controls.check_receive(fed.federation_id, amount)
        if not isinstance(description, str) or len(_utf8(description)) > MAX_DESCRIPTION_BYTES:
            raise InvalidInput(f"description must be text of at most {MAX_DESCRIPTION_BYTES} bytes in UTF-8")
        if (
            isinstance(expiry_secs, bool)
            or not isinstance(expiry_secs, int)
            or not 60 <= expiry_secs <= MAX_EXPIRY_SECS
        ):
            raise InvalidInput(f"expiry_secs must be an integer from 60 to {MAX_EXPIRY_SECS}")
        client = self._feds.client(fed.federation_id)
        if Feature.INVOICE_BY_GATEWAY not in client.features:
            raise InvalidInput("this federation's API version receives through offers, not gateway invoices")
        fee = fed.fees.fee(amount)
        if fee.value >= amount.value:
            raise InvalidInput(
                f"amount {amount.value} msat does not cover the receive fee of {fee.value} msat"
            )
        if self._router.hash_count() >= MAX_REGISTRATIONS:
            raise NotReady("too many invoices are waiting to be paid; try again later")
        request = await client.accept_incoming_contract(contract, amount - fee)
        async with self._registering:
            return await self._register(fed, request, amount, fee, description, expiry_secs)

    async def _register(
        self,
        fed: fed_repo.FederationRecord,
        request: IncomingRequest,
        amount: Msat,
        fee: Msat,
        description: str,
        expiry_secs: int,
    ) -> dict[str, Any]:
        payment_id = f"v2:{request.payment_hash}"
        existing = await repo.get(self._db.conn, payment_id)
        if existing is not None:
            if existing.data.get("request", {}).get("contract_id") == request.contract_id:
                return {"invoice": existing.data["invoice"]}
            raise AlreadyExists("an invoice for this payment hash exists already, for another contract")
        if await self._node.has_invoice(request.payment_hash):
            raise AlreadyExists("this node has an invoice of its own with this payment hash")
        info = await self._node.info()
        now = self._clock.now()
        secret = secrets.token_bytes(32)
        content = bolt11.InvoiceContent(
            currency=CURRENCY.get(info.network, "bcrt"),
            amount_msat=amount.value,
            timestamp=now,
            payment_hash=bytes.fromhex(request.payment_hash),
            payment_secret=secret,
            description=description,
            expiry=expiry_secs,
            min_final_cltv_expiry=max(18, self._config.cltv_margin + 6),
            features=bolt11.feature_bits(
                required=(bolt11.VAR_ONION_OPTIN, bolt11.PAYMENT_SECRET)
            ),  # no basic_mpp: one HTLC pays the invoice
        )
        invoice = await self._node.sign_invoice(
            bolt11.encode_for_signinvoice(bolt11.encode_unsigned(content))
        )
        rec = repo.PaymentRecord(
            payment_id=payment_id,
            kind=PaymentKind.RECEIVE,
            state=PaymentState.REGISTERED,
            payment_hash=request.payment_hash,
            amount_msat=request.amount.value,
            fee_msat=fee.value,
            federation_id=fed.federation_id.hex,
            created_at=now,
            updated_at=now,
            data={
                "api": "v2",
                "request": request_json(request),
                "invoice": invoice,
                "invoice_amount_msat": amount.value,
                "invoice_expires_at": now + expiry_secs,
                "payment_secret": secret.hex(),
                "registered_at": time.time(),
            },
        )
        async with self._db.transaction() as conn:
            await repo.save(conn, rec)
        self._router.add_hash(request.payment_hash, fed.federation_id)
        return {"invoice": invoice}


async def prune_expired(ctx: ServiceContext) -> int:
    """Delete registrations whose invoice expired more than `REGISTRATION_GRACE` ago and
    forget their hashes; returns how many (at start, then periodically)."""
    async with ctx.db.transaction() as conn:
        hashes = await repo.delete_expired_registrations(conn, ctx.clock.now() - REGISTRATION_GRACE)
    for payment_hash in hashes:
        ctx.router.remove_hash(payment_hash)
    return len(hashes)


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from JSON
        raise InvalidInput("the text is not valid Unicode") from None
