"""Adapter for devfed federation API v2: JSON-RPC 2.0 over WebSocket (docs/federation-api.md §7).

v2 is LNv2-like: receivers hand their `incoming_contract_v2` to the gateway, whose node makes
the invoice; after funding, the gateway itself collects decryption shares from every guardian,
verifies them, combines a threshold and decrypts; gateways are vetted by the federation's
admin; a failed outgoing payment is released with a forfeit signature given to the user.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp

from fedimint_gw.crypto.errors import CryptoError
from fedimint_gw.crypto.point import Point
from fedimint_gw.crypto.threshold_elgamal import (
    Ciphertext,
    DecryptionShare,
    decrypt,
    verify_ciphertext,
    verify_share,
)
from fedimint_gw.domain.amount import Msat
from fedimint_gw.errors import FederationMisbehaved, FederationUnreachable, InvalidInput
from fedimint_gw.federation.adapter import AdapterContext
from fedimint_gw.federation.client import (
    CancelResult,
    Feature,
    FederationClient,
    GatewayRegistration,
    IncomingOutcome,
    IncomingRequest,
    IncomingState,
    RegistrationResult,
    RegistrationStatus,
)
from fedimint_gw.federation.devfed.base import DevfedFactory, LedgerClient
from fedimint_gw.federation.devfed.guardians import (
    FederationKeys,
    Json,
    RemoteError,
    as_obj,
    object_id,
    sign,
    verify_signature,
    ws_rpc,
)
from fedimint_gw.federation.devfed.notes_format import parse_hash
from fedimint_gw.federation.devfed.reads import poll

FEATURES = frozenset(
    {
        Feature.VETTED_GATEWAYS,
        Feature.INVOICE_BY_GATEWAY,
        Feature.FORFEIT_OUTGOING,
        Feature.GATEWAY_DECRYPTION,
    }
)
_CONTRACT_FIELDS = frozenset(
    {
        "kind",
        "payment_hash",
        "amount_msat",
        "claim_pubkey",
        "refund_pubkey",
        "expiration_height",
        "encrypted_preimage",
    }
)


class RpcApi:
    """The v2 calls to one guardian (a short-lived WebSocket per call), each with a deadline."""

    def __init__(self, session: aiohttp.ClientSession, timeout: float) -> None:
        self._session = session
        self._timeout = timeout

    async def call(self, url: str, method: str, params: Mapping[str, object] | None = None) -> object:
        """One JSON-RPC call."""
        return await ws_rpc(self._session, url, method, params or {}, self._timeout)

    async def submit(self, url: str, tx: Json) -> Json:
        """`submit_transaction`."""
        return as_obj(await self.call(url, "submit_transaction", {"transaction": tx}), "submit_transaction")

    async def signature_shares(self, url: str, txid: str) -> dict[int, object]:
        """`signature_shares`, by output index."""
        shares = as_obj(await self.call(url, "signature_shares", {"txid": txid}), "signature_shares").get(
            "shares"
        )
        if not isinstance(shares, dict):
            raise RemoteError("malformed_answer", f"{url}: signature shares are not an object")
        return {int(k): v for k, v in shares.items() if k.isdigit()}

    async def transaction(self, url: str, txid: str) -> Json:
        """`transaction_status`."""
        return as_obj(await self.call(url, "transaction_status", {"txid": txid}), "transaction_status")

    async def contract(self, url: str, contract_id: str) -> Json:
        """`contract`."""
        return as_obj(await self.call(url, "contract", {"contract_id": contract_id}), "contract")

    async def block_height(self, url: str) -> int:
        """`block_height`."""
        height = await self.call(url, "block_height")
        if isinstance(height, bool) or not isinstance(height, int):
            raise RemoteError("malformed_answer", f"{url}: block height is not an integer")
        return height

    async def decryption_share(self, url: str, contract_id: str) -> object:
        """`decryption_share`: the raw share (verified by the caller)."""
        return as_obj(await self.call(url, "decryption_share", {"contract_id": contract_id}), "share").get(
            "share"
        )

    async def gateways(self, url: str) -> list[str]:
        """`gateways`: the admin-vetted gateway API URLs."""
        urls = await self.call(url, "gateways")
        if not isinstance(urls, list):
            raise RemoteError("malformed_answer", f"{url}: gateways is not a list")
        return [str(u) for u in urls]


def normalize_contract(contract: Mapping[str, object]) -> Json:
    """A receiver's `incoming_contract_v2` in the exact form devfed hashes; InvalidInput if malformed."""
    if set(contract) != _CONTRACT_FIELDS:
        raise InvalidInput(f"an incoming v2 contract has exactly the fields {sorted(_CONTRACT_FIELDS)}")
    if contract["kind"] != "incoming_contract_v2":
        raise InvalidInput(f"contract kind must be incoming_contract_v2, not {contract['kind']!r}")
    try:
        amount, expiration = contract["amount_msat"], contract["expiration_height"]
        if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in (amount, expiration)):
            raise ValueError("amount_msat and expiration_height must be positive integers")
        return {
            "kind": "incoming_contract_v2",
            "payment_hash": parse_hash(str(contract["payment_hash"])),
            "amount_msat": amount,
            "claim_pubkey": Point.from_hex(str(contract["claim_pubkey"]).lower()).to_hex(),
            "refund_pubkey": Point.from_hex(str(contract["refund_pubkey"]).lower()).to_hex(),
            "expiration_height": expiration,
            "encrypted_preimage": Ciphertext.from_dict(contract["encrypted_preimage"]).to_dict(),
        }
    except (ValueError, CryptoError) as exc:
        raise InvalidInput(f"malformed incoming v2 contract: {exc}") from None


def contract_context(contract: Mapping[str, object]) -> bytes:
    """The ElGamal context: sha256 of the contract without its ciphertext."""
    return bytes.fromhex(object_id({k: v for k, v in contract.items() if k != "encrypted_preimage"}))


class V2Client(LedgerClient):
    """A `FederationClient` speaking devfed API v2."""

    features = FEATURES

    def __init__(self, ctx: AdapterContext, keys: FederationKeys) -> None:
        self._api = RpcApi(ctx.session, ctx.request_timeout)
        super().__init__(ctx, keys, self._api)

    async def register(self, registration: GatewayRegistration) -> RegistrationResult:
        """Check whether the federation's admin vetted `api_url` (read-only, repeatable)."""
        vetted = await self._guardians.first(lambda g: self._api.gateways(g.url), "vetted gateways")
        wanted = registration.api_url.rstrip("/")
        ok = any(u.rstrip("/") == wanted for u in vetted)
        return RegistrationResult(RegistrationStatus.VETTED if ok else RegistrationStatus.NOT_VETTED)

    async def lookup_incoming(self, payment_hash: str) -> IncomingRequest | None:
        """Always None: v2 contracts are handed to the gateway (`accept_incoming_contract`)."""
        parse_hash(payment_hash)
        return None

    async def accept_incoming_contract(self, contract: dict[str, object], amount: Msat) -> IncomingRequest:
        """Check a receiver's contract: refund key is ours, `amount_msat == amount`, expiration
        above the current height, ciphertext well formed for its context. Read-only."""
        body = normalize_contract(contract)
        if body["refund_pubkey"] != self.gateway_pubkey:
            raise InvalidInput("the contract's refund_pubkey is not this gateway's key in this federation")
        if body["amount_msat"] != amount.value:
            raise InvalidInput(f"the contract pays {body['amount_msat']} msat, {amount.value} msat expected")
        height = await self.block_height()
        if body["expiration_height"] <= height:
            raise InvalidInput(f"the contract expired at height {body['expiration_height']} (now {height})")
        ciphertext = Ciphertext.from_dict(body["encrypted_preimage"])
        if not verify_ciphertext(self._keys.ln_pubkey, ciphertext, contract_context(body)):
            raise InvalidInput("the encrypted preimage is not encrypted to this federation for this contract")
        return IncomingRequest(
            object_id(body), body["payment_hash"], amount, body["expiration_height"], {"contract": body}
        )

    async def fund_incoming(self, request: IncomingRequest, operation_id: str) -> str:
        """Fund exactly the accepted contract. Idempotent per operation id."""
        raw = request.data.get("contract")
        if not isinstance(raw, dict):
            raise InvalidInput("this request was not made by accept_incoming_contract")
        body = normalize_contract(raw)
        if body["refund_pubkey"] != self.gateway_pubkey or object_id(body) != request.contract_id:
            raise InvalidInput("the request's contract is not refundable to this gateway or was altered")
        return await self._ledger.fund(operation_id, body)

    async def await_preimage(self, contract_id: str, timeout: float) -> IncomingOutcome:
        """Collect, verify and combine decryption shares: PREIMAGE, or (invalid preimage) refund
        the gateway's ecash and REFUNDED. PENDING (or FederationUnreachable) after `timeout`."""
        contract_id = parse_hash(contract_id, "contract id")

        async def attempt() -> IncomingOutcome | None:
            view = await self._ledger.contract(contract_id, preimage_ok=True)
            body = view["contract"]
            if body.get("kind") != "incoming_contract_v2":
                raise InvalidInput(f"contract {contract_id} is not a v2 incoming contract")
            state, amount = view["state"], Msat(int(body["amount_msat"]))
            if state == "refunded":
                back = await self._ledger.refund_incoming(contract_id, amount, refunded=True)
                return IncomingOutcome(IncomingState.REFUNDED, refunded=back)
            if state == "claimed" and view.get("preimage"):
                preimage = bytes.fromhex(str(view["preimage"]))
            else:
                preimage = await self._decrypt(contract_id, body)
            if hashlib.sha256(preimage).hexdigest() == body["payment_hash"]:
                return IncomingOutcome(IncomingState.PREIMAGE, preimage)
            back = await self._ledger.refund_incoming(contract_id, amount)
            return IncomingOutcome(IncomingState.REFUNDED, refunded=back)

        return await poll(attempt, timeout)

    async def _decrypt(self, contract_id: str, body: Json) -> bytes:
        try:
            ciphertext = Ciphertext.from_dict(body["encrypted_preimage"])
        except CryptoError as exc:
            raise FederationMisbehaved(f"contract {contract_id} has a malformed ciphertext: {exc}") from None
        context, keys, t = contract_context(body), self._keys.ln_shares, self._keys.threshold

        def enough(answers: Mapping[int, object]) -> bytes:
            good: list[DecryptionShare] = []
            bad: list[int] = []
            for index, raw in answers.items():
                try:
                    share = DecryptionShare.from_dict(raw)
                    ok = share.index == index and verify_share(keys[index], ciphertext, share)
                except CryptoError:
                    ok = False
                if ok:
                    good.append(share)
                else:
                    bad.append(index - 1)
            self._ledger.misbehaving.update(bad)
            if len(good) < t:
                raise FederationUnreachable(
                    f"only {len(good)} valid decryption share(s), {t} needed"
                    + (f"; invalid shares from guardian(s) {sorted(bad)}" if bad else "")
                )
            try:
                return decrypt(self._keys.ln_pubkey, ciphertext, context, good[:t], keys, t)
            except CryptoError:
                return b""  # not decryptable for its context: as good as an invalid preimage

        return await self._guardians.collect(
            lambda g: self._api.decryption_share(g.url, contract_id),
            enough,
            f"decryption of {contract_id[:16]}",
        )

    async def check_send_auth(self, contract_id: str, invoice: str, auth: object) -> bool:
        """v2 `send_payment` must carry the contract refund key's signature over
        {contract_id, invoice}: only the contract's owner can name the invoice it pays."""
        view = await self._ledger.contract(parse_hash(contract_id, "contract id"))
        refund_key = view.get("contract", {}).get("refund_pubkey")
        if not isinstance(refund_key, str):
            return False
        message = {"contract_id": contract_id, "invoice": invoice}
        return verify_signature(refund_key, "send_payment", message, auth)

    async def cancel_outgoing(self, contract_id: str) -> CancelResult:
        """A forfeit signature the user puts into `outgoing_refund` (no federation call).
        Deterministic, so repeating it returns the same signature. Never claim afterwards."""
        contract_id = parse_hash(contract_id, "contract id")
        signature = sign(self._ctx.gateway_secret, "forfeit", {"contract_id": contract_id})
        return CancelResult(contract_id, forfeit_signature=signature)


@dataclass(frozen=True)
class V2Factory(DevfedFactory):
    """The devfed API v2 adapter."""

    major: int = 2
    min_minor: int = 0
    name: str = "devfed-v2"

    async def _raw_config(self, session: aiohttp.ClientSession, url: str, timeout: float) -> object:
        """`config` over the WebSocket (the answer holds it under `config`)."""
        answer = await ws_rpc(session, url, "config", {}, timeout)
        return answer.get("config") if isinstance(answer, dict) else None

    def _client(self, ctx: AdapterContext, keys: FederationKeys) -> FederationClient:
        return V2Client(ctx, keys)


FACTORY = V2Factory()
