"""Adapter for devfed federation API v1: HTTP + JSON REST (docs/federation-api.md §6).

v1 is LNv1-like: receivers publish offers that the gateway buys (`incoming_contract_v1`), the
federation decrypts the preimage in consensus and the gateway polls the contract; gateways
register themselves with a TTL; a failed outgoing payment is cancelled with a signature.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import aiohttp

from fedimint_gw.domain.amount import Msat
from fedimint_gw.errors import FederationMisbehaved, FederationRejected, InvalidInput, NotFound
from fedimint_gw.federation.adapter import AdapterContext
from fedimint_gw.federation.client import (
    CancelResult,
    Feature,
    FederationClient,
    GatewayRegistration,
    IncomingOutcome,
    IncomingRequest,
    IncomingState,
    OutgoingState,
    RegistrationResult,
    RegistrationStatus,
)
from fedimint_gw.federation.devfed.base import DevfedFactory, LedgerClient
from fedimint_gw.federation.devfed.guardians import (
    FederationKeys,
    Json,
    RemoteError,
    as_obj,
    http_json,
    object_id,
    sign,
)
from fedimint_gw.federation.devfed.notes_format import parse_hash
from fedimint_gw.federation.devfed.reads import poll

FEATURES = frozenset({Feature.SELF_REGISTRATION, Feature.CANCEL_OUTGOING, Feature.CONSENSUS_DECRYPTION})


class RestApi:
    """The v1 calls to one guardian (`{url}/v1/...`), each with a deadline."""

    def __init__(self, session: aiohttp.ClientSession, timeout: float) -> None:
        self._session = session
        self._timeout = timeout

    async def call(self, method: str, url: str, path: str, body: object | None = None) -> Json:
        """One request; the answer must be a JSON object."""
        answer = await http_json(self._session, method, f"{url}/v1{path}", body, self._timeout)
        return as_obj(answer, f"{method} /v1{path}")

    async def submit(self, url: str, tx: Json) -> Json:
        """POST /v1/transactions."""
        return await self.call("POST", url, "/transactions", tx)

    async def signature_shares(self, url: str, txid: str) -> dict[int, object]:
        """GET /v1/transactions/{txid}/signature_shares, by output index."""
        data = await self.call("GET", url, f"/transactions/{txid}/signature_shares")
        shares = data.get("shares")
        if not isinstance(shares, list):
            raise RemoteError("malformed_answer", f"{url}: signature shares are not a list")
        return {s["out_idx"]: s for s in shares if isinstance(s, dict) and isinstance(s.get("out_idx"), int)}

    async def transaction(self, url: str, txid: str) -> Json:
        """GET /v1/transactions/{txid}."""
        return await self.call("GET", url, f"/transactions/{txid}")

    async def contract(self, url: str, contract_id: str) -> Json:
        """GET /v1/contracts/{id}."""
        return await self.call("GET", url, f"/contracts/{contract_id}")

    async def block_height(self, url: str) -> int:
        """GET /v1/block_height."""
        height = (await self.call("GET", url, "/block_height")).get("height")
        if isinstance(height, bool) or not isinstance(height, int):
            raise RemoteError("malformed_answer", f"{url}: block height is not an integer")
        return height


class V1Client(LedgerClient):
    """A `FederationClient` speaking devfed API v1."""

    features = FEATURES

    def __init__(self, ctx: AdapterContext, keys: FederationKeys) -> None:
        self._api = RestApi(ctx.session, ctx.request_timeout)
        super().__init__(ctx, keys, self._api)

    async def register(self, registration: GatewayRegistration) -> RegistrationResult:
        """Self-register (signed by the gateway key) until now + ttl. Repeatable: re-registering
        replaces the registration and extends it."""
        reg: Json = {
            "node_pubkey": registration.node_id,
            "gateway_pubkey": self.gateway_pubkey,
            "scid": registration.scid.to_int(),
            "api_url": registration.api_url,
            "fees": {"base_msat": registration.fees.base_msat, "ppm": registration.fees.ppm},
            "ttl": registration.ttl_secs,
        }
        body = {"registration": reg, "signature": sign(self._ctx.gateway_secret, "gateway_registration", reg)}
        answer = await self._guardians.first(
            lambda g: self._api.call("POST", g.url, "/gateways", body), "gateway registration"
        )
        expires = answer.get("expires_at")
        if isinstance(expires, bool) or not isinstance(expires, (int, float)):
            raise FederationMisbehaved("the registration answer lacks expires_at")
        return RegistrationResult(RegistrationStatus.REGISTERED, int(expires))

    def _incoming_output(self, payment_hash: str, amount: Msat) -> Json:
        return {
            "kind": "incoming_contract_v1",
            "payment_hash": payment_hash,
            "amount_msat": amount.value,
            "refund_pubkey": self.gateway_pubkey,
        }

    async def lookup_incoming(self, payment_hash: str) -> IncomingRequest | None:
        """The unbought offer for this hash (or the one this gateway bought), else None."""
        payment_hash = parse_hash(payment_hash)
        try:
            offer = await self._ledger.reads.quorum.agree(
                lambda g: self._api.call("GET", g.url, f"/offers/{payment_hash}"), "offer lookup"
            )
        except NotFound:
            return None
        try:
            amount = Msat(int(offer["amount_msat"]))
            expiry = int(offer["expiry"])
            if offer["payment_hash"] != payment_hash:
                raise ValueError("the offer is for another payment hash")
        except (KeyError, ValueError, TypeError) as exc:
            raise FederationMisbehaved(f"malformed offer: {exc}") from None
        contract_id = object_id(self._incoming_output(payment_hash, amount))
        if offer.get("contract_id") not in (None, contract_id):
            return None  # bought by another contract: it cannot be paid again
        return IncomingRequest(contract_id, payment_hash, amount, expiry, {"kind": "incoming_contract_v1"})

    async def accept_incoming_contract(self, contract: dict[str, object], amount: Msat) -> IncomingRequest:
        """Not in v1: receivers publish offers instead (no INVOICE_BY_GATEWAY)."""
        raise InvalidInput("federation API v1 has no gateway-made invoices; receivers publish offers")

    async def fund_incoming(self, request: IncomingRequest, operation_id: str) -> str:
        """Buy the offer with an `incoming_contract_v1` refundable to the gateway key.
        Idempotent per operation id (the same stored transaction is resubmitted)."""
        output = self._incoming_output(parse_hash(request.payment_hash), request.amount)
        return await self._ledger.fund(operation_id, output)

    async def await_preimage(self, contract_id: str, timeout: float) -> IncomingOutcome:
        """Poll the contract until the federation decrypted it: PREIMAGE, or (invalid preimage)
        refund the gateway's ecash and REFUNDED; PENDING after `timeout`. Safe to repeat."""
        contract_id = parse_hash(contract_id, "contract id")

        async def attempt() -> IncomingOutcome | None:
            view = await self._ledger.contract(contract_id, preimage_ok=True)
            body = view["contract"]
            if body.get("kind") != "incoming_contract_v1":
                raise InvalidInput(f"contract {contract_id} is not a v1 incoming contract")
            state, amount = view["state"], Msat(int(body["amount_msat"]))
            if state in ("preimage", "claimed"):
                preimage = bytes.fromhex(str(view.get("preimage") or ""))
                if hashlib.sha256(preimage).hexdigest() != body["payment_hash"]:
                    raise FederationMisbehaved(f"contract {contract_id} shows a preimage of another hash")
                return IncomingOutcome(IncomingState.PREIMAGE, preimage)
            if state in ("refund", "refunded"):
                back = await self._ledger.refund_incoming(contract_id, amount, refunded=state == "refunded")
                return IncomingOutcome(IncomingState.REFUNDED, refunded=back)
            return None

        return await poll(attempt, timeout)

    async def check_send_auth(self, contract_id: str, invoice: str, auth: object) -> bool:
        """v1 `pay_invoice` must carry `preimage_auth`: sha256 of the owner's refund key secret,
        32 bytes in hex. No field of a v1 contract commits to it, so only its form can be checked
        (the contract's hash binds the invoice's hash); see docs/operator-guide.md."""
        return isinstance(auth, str) and len(auth) == 64 and all(c in "0123456789abcdef" for c in auth)

    async def cancel_outgoing(self, contract_id: str) -> CancelResult:
        """Cancel the contract (signed) so the user can refund at once. Idempotent."""
        contract_id = parse_hash(contract_id, "contract id")
        contract = await self._ledger.verify_outgoing(contract_id)
        if not contract.gateway_key_matches:
            raise InvalidInput(f"contract {contract_id} is not locked to this gateway's key")
        if contract.state is OutgoingState.CLAIMED:
            raise FederationRejected(f"cancel: contract_state: contract {contract_id} was claimed already")
        if contract.state is OutgoingState.FUNDED:
            body = {"signature": sign(self._ctx.gateway_secret, "cancel", {"contract_id": contract_id})}
            await self._ledger.reads.quorum.agree(
                lambda g: self._api.call("POST", g.url, f"/contracts/{contract_id}/cancel", body),
                f"cancel of contract {contract_id[:16]}",
            )
        return CancelResult(contract_id)


@dataclass(frozen=True)
class V1Factory(DevfedFactory):
    """The devfed API v1 adapter."""

    major: int = 1
    min_minor: int = 0
    name: str = "devfed-v1"

    async def _raw_config(self, session: aiohttp.ClientSession, url: str, timeout: float) -> object:
        """GET /v1/config."""
        return await http_json(session, "GET", f"{url}/v1/config", None, timeout)

    def _client(self, ctx: AdapterContext, keys: FederationKeys) -> FederationClient:
        return V1Client(ctx, keys)


FACTORY = V1Factory()
