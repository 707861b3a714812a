"""A `FederationClient` for a Fedimint federation served over LNv2 (built on `lnv2.Lnv2Gateway`).

Handles, not state: LNv2 names a funded contract by its out point, and the gateway cannot fetch an
outgoing contract's body from the federation (only its id and expiry). So the ids this client
hands to the services are self-describing:
- an outgoing handle is ``lnv2out:`` + hex(out point || OutgoingContract), built from a
  ``/send_payment`` request by :func:`outgoing_handle`; every use re-checks it against a threshold
  answer (the contract id at that out point must be the handle's), so a forged handle finds
  nothing to take;
- an incoming handle (what ``fund_incoming`` returns) is ``lnv2in:`` + hex(out point ||
  IncomingContract): the funding's out point and the contract to decrypt.
The services persist these strings in their payment records, which is all a restart needs.
Funding is keyed by the caller's operation id (stored before submission); the refund and the
claim by the handle (one funding of one contract), so each is done once whatever the caller does.
"""

from __future__ import annotations

import hashlib

from fedimint_gw.clock import Clock
from fedimint_gw.domain.amount import Msat
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.errors import FederationUnreachable, InvalidInput
from fedimint_gw.federation.client import (
    ApiVersion,
    CancelResult,
    EcashFees,
    EcashNotes,
    Feature,
    FederationClient,
    FederationInfo,
    GatewayRegistration,
    IncomingOutcome,
    IncomingRequest,
    NotesSummary,
    OutgoingContract,
    OutgoingState,
    RegistrationResult,
    RegistrationStatus,
)
from fedimint_gw.federation.fedimint.lnv2 import Lnv2Gateway
from fedimint_gw.federation.fedimint.mint import MintClient, receive_operation_id
from fedimint_gw.federation.fedimint.module_ops import funding_fee_of
from fedimint_gw.federation.fedimint.notes import FedimintNotes, MintOpState
from fedimint_gw.federation.fedimint.release import ReleaseOutcome, release_funding
from fedimint_gw.fedimint.encoding import Reader, decode_whole, encode
from fedimint_gw.fedimint.errors import DecodeError, FedimintProtocolError
from fedimint_gw.fedimint.lnv2 import api as lnv2_api
from fedimint_gw.fedimint.lnv2.contracts import IncomingContract
from fedimint_gw.fedimint.lnv2.contracts import OutgoingContract as Lnv2Outgoing
from fedimint_gw.fedimint.mint_client import note_nonce
from fedimint_gw.fedimint.oob import parse_oob_notes
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transaction import OutPoint

FEATURES = frozenset(
    {
        Feature.VETTED_GATEWAYS,
        Feature.INVOICE_BY_GATEWAY,
        Feature.FORFEIT_OUTGOING,
        Feature.GATEWAY_DECRYPTION,
    }
)
DEFAULT_VERSION = ApiVersion(1, 0)
"""What `info` shows: LNv2's module consensus version (devfed serves 1.0)."""
OUT_PREFIX = "lnv2out:"
IN_PREFIX = "lnv2in:"
MAX_HANDLE_CHARS = 4096


def outgoing_handle(outpoint: OutPoint, contract: Lnv2Outgoing) -> str:
    """The contract id the services use for a sender's contract at ``outpoint``."""
    return OUT_PREFIX + (encode(outpoint.write) + contract.to_bytes()).hex()


def incoming_handle(outpoint: OutPoint, contract: IncomingContract) -> str:
    return IN_PREFIX + (encode(outpoint.write) + contract.to_bytes()).hex()


def _parse(handle: str, prefix: str) -> Reader:
    if not isinstance(handle, str) or not handle.startswith(prefix) or len(handle) > MAX_HANDLE_CHARS:
        raise InvalidInput(f"not an LNv2 contract handle ({prefix}…)")
    try:
        return Reader(bytes.fromhex(handle[len(prefix) :]))
    except ValueError:
        raise InvalidInput("an LNv2 contract handle is hex after its prefix") from None


def _digest(handle: str) -> str:
    """Operation ids of refunds and claims: one per funding (out point and contract)."""
    return hashlib.sha256(handle.encode()).hexdigest()


def _read_outgoing(r: Reader) -> tuple[OutPoint, Lnv2Outgoing]:
    return OutPoint.read(r), Lnv2Outgoing.read(r)


def _read_incoming(r: Reader) -> tuple[OutPoint, IncomingContract]:
    return OutPoint.read(r), IncomingContract.read(r)


def parse_outgoing_handle(handle: str) -> tuple[OutPoint, Lnv2Outgoing]:
    reader = _parse(handle, OUT_PREFIX)
    try:
        return decode_whole(reader.read(reader.remaining), _read_outgoing)
    except DecodeError as exc:
        raise InvalidInput(f"malformed LNv2 contract handle: {exc.message}") from None


def parse_incoming_handle(handle: str) -> tuple[OutPoint, IncomingContract]:
    reader = _parse(handle, IN_PREFIX)
    try:
        return decode_whole(
            reader.read(reader.remaining), lambda r: (OutPoint.read(r), IncomingContract.read(r))
        )
    except DecodeError as exc:
        raise InvalidInput(f"malformed LNv2 contract handle: {exc.message}") from None


class Lnv2FederationClient:
    """The gateway's view of one Fedimint federation whose Lightning module is LNv2."""

    features = FEATURES

    def __init__(
        self,
        federation_id: FederationId,
        name: str,
        api: FederationApi,
        notes: FedimintNotes,
        mint: MintClient,
        lnv2: Lnv2Gateway,
        clock: Clock,
        api_version: ApiVersion = DEFAULT_VERSION,
    ) -> None:
        self._fid = federation_id
        self._name = name
        self._api = api
        self._notes = notes
        self._mint = mint
        self._lnv2 = lnv2
        self._clock = clock
        self._version = api_version
        self.gateway_pubkey = lnv2.module_public_key.hex()

    async def info(self) -> FederationInfo:
        return FederationInfo(
            federation_id=self._fid,
            name=self._name,
            api_version=self._version,
            guardians=len(self._api.peers),
            threshold=self._api.threshold,
            tx_fee=Msat(self._lnv2.config.fee.base),
            block_height=await self.block_height(),
        )

    async def balance(self) -> Msat:
        return await self._notes.balance()

    async def block_height(self) -> int:
        try:
            return await lnv2_api.consensus_block_count(self._api, self._lnv2.instance)
        except FedimintProtocolError as exc:
            raise FederationUnreachable(f"block count not agreed: {exc.message}") from None

    async def register(self, registration: GatewayRegistration) -> RegistrationResult:
        """Vetted gateways: whether the guardians list ``api_url`` (read-only)."""
        try:
            vetted = await lnv2_api.gateways(self._api, self._lnv2.instance)
        except FedimintProtocolError as exc:
            raise FederationUnreachable(f"gateway list not agreed: {exc.message}") from None
        wanted = registration.api_url.rstrip("/")
        listed = any(u.rstrip("/") == wanted for u in vetted)
        return RegistrationResult(RegistrationStatus.VETTED if listed else RegistrationStatus.NOT_VETTED)

    async def lookup_incoming(self, payment_hash: str) -> IncomingRequest | None:
        """Always None: LNv2 receivers hand their contract to the gateway."""
        return None

    async def accept_incoming_contract(self, contract: dict[str, object], amount: Msat) -> IncomingRequest:
        try:
            parsed = IncomingContract.from_json(contract)
        except DecodeError as exc:
            raise InvalidInput(f"malformed LNv2 incoming contract: {exc.message}") from None
        self._lnv2.check_incoming(parsed, amount)
        commitment = parsed.commitment
        return IncomingRequest(
            contract_id=parsed.contract_id().hex(),
            payment_hash=commitment.payment_image.value.hex(),
            amount=Msat(commitment.amount),
            expiry=commitment.expiration,
            data={"contract": parsed.to_json()},
        )

    def _request_contract(self, request: IncomingRequest) -> IncomingContract:
        try:
            contract = IncomingContract.from_json(request.data.get("contract"))
        except DecodeError as exc:
            raise InvalidInput(f"this request holds no LNv2 contract: {exc.message}") from None
        if contract.contract_id().hex() != request.contract_id:
            raise InvalidInput("the request's contract was altered")
        return contract

    async def fund_incoming(self, request: IncomingRequest, operation_id: str) -> str:
        contract = self._request_contract(request)
        self._lnv2.check_incoming(contract, request.amount)
        outpoint = await self._lnv2.fund_incoming(contract, operation_id)
        return incoming_handle(outpoint, contract)

    async def funding_fee(self, request: IncomingRequest, operation_id: str) -> Msat:
        """The stored funding's mint fees (inputs less change less the contract) and the
        Lightning module's contract fee."""
        return await funding_fee_of(self._notes, request, operation_id)

    async def abandon_funding(self, operation_id: str) -> bool:
        """Make an uncertain funding impossible, never submit it: True once it never happened
        (not stored, refused, or its notes spent back to us by a release a threshold accepted);
        False once accepted; FederationUnreachable while neither is certain."""
        op = await self._notes.get(operation_id)
        if op is None or op.state is MintOpState.FAILED:
            return True
        if op.state is MintOpState.DONE:
            return False
        outcome = await release_funding(self._notes, self._api, op)
        if outcome is ReleaseOutcome.RELEASED:
            return True
        if outcome is ReleaseOutcome.FUNDED:
            return False
        raise FederationUnreachable(f"funding {operation_id}: neither its release nor itself is accepted yet")

    async def await_preimage(self, contract_id: str, timeout: float) -> IncomingOutcome:
        outpoint, contract = parse_incoming_handle(contract_id)
        refund_id = "lnv2-refund-" + _digest(contract_id)
        return await self._lnv2.incoming_outcome(contract, outpoint, refund_id)

    async def verify_outgoing(self, contract_id: str) -> OutgoingContract:
        outpoint, contract = parse_outgoing_handle(contract_id)
        checked = await self._lnv2.check_outgoing(outpoint, contract)
        height = await self.block_height()
        return OutgoingContract(
            contract_id=contract_id,
            payment_hash=contract.payment_image.value.hex(),
            amount=Msat(contract.amount),
            timelock_height=height + checked.blocks_left,
            state=OutgoingState.FUNDED,
            gateway_key_matches=contract.claim_pk == self._lnv2.module_public_key,
        )

    async def check_send_auth(self, contract_id: str, invoice: str, auth: object) -> bool:
        _, contract = parse_outgoing_handle(contract_id)
        if not isinstance(auth, str):
            return False
        try:
            signature = bytes.fromhex(auth)
        except ValueError:
            return False
        return self._lnv2.send_auth_valid(contract, invoice, signature)

    async def claim_outgoing(self, contract_id: str, preimage: bytes) -> Msat:
        """Claim once per contract: a claim already stored is driven to its end (a replay after
        the claim spent the contract must not look the contract up again)."""
        outpoint, contract = parse_outgoing_handle(contract_id)
        claim_id = "lnv2-claim-" + _digest(contract_id)
        stored = await self._notes.get(claim_id)
        if stored is not None:
            done = await self._mint.run(stored)
            return Msat(int(done.result["received_msat"]))
        checked = await self._lnv2.check_outgoing(outpoint, contract)
        return await self._lnv2.claim_outgoing(checked, preimage, claim_id)

    async def cancel_outgoing(self, contract_id: str) -> CancelResult:
        _, contract = parse_outgoing_handle(contract_id)
        return CancelResult(contract_id, forfeit_signature=self._lnv2.forfeit_signature(contract).hex())

    async def spend_ecash(self, amount: Msat, operation_id: str) -> EcashNotes:
        result = await self._mint.spend(operation_id, amount)
        return EcashNotes(result.amount, result.oob, await self._notes.spend_fee(operation_id))

    async def ecash_fees(self, amount: Msat) -> EcashFees:
        fees = self._notes.note_fees(amount)
        return EcashFees(spend=Msat(fees.spend), reissue=Msat(fees.reissue))

    async def receive_ecash(self, notes: str) -> Msat:
        try:
            oob = parse_oob_notes(notes)
        except DecodeError as exc:
            raise InvalidInput(f"malformed e-cash notes: {exc.message}") from None
        return (await self._mint.receive(oob)).received

    async def inspect_ecash(self, notes: str) -> NotesSummary:
        try:
            oob = parse_oob_notes(notes)
        except DecodeError as exc:
            raise InvalidInput(f"malformed e-cash notes: {exc.message}") from None
        ours = oob.federation_id_prefix == self._fid.raw[:4]
        nonces = sorted(note_nonce(n) for items in oob.notes.values() for n in items)
        received = await self._notes.get(receive_operation_id(oob)) is not None
        return NotesSummary(
            federation_id=self._fid.hex if ours else oob.federation_id_prefix.hex(),
            amount=Msat(oob.total_msat),
            fingerprint=hashlib.sha256(b"".join(nonces)).hexdigest(),
            received=received,
            reissue_fee=self._notes.reissue_fee(oob),
        )

    async def resume_operations(self) -> int:
        """End the mint and LNv2 operations a crash cut short (`Lnv2Gateway.resume`)."""
        return len(await self._lnv2.resume())

    async def close(self) -> None:
        await self._mint.close()
        await self._api.close()


def as_federation_client(client: Lnv2FederationClient) -> FederationClient:
    """Typed view through the seam (mypy checks here that the Protocol is met)."""
    return client
