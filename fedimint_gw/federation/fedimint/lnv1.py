"""The gateway's adapter for Fedimint federations serving LNv1 (`ln`), with the mint notes.

Every money decision reads a threshold of agreeing guardian answers (offers, contract accounts,
block counts, submission outcomes); a preimage is accepted only if its hash matches. Each
movement of notes is a stored operation (`module_ops`) driven by `MintClient.run`, so a crash or
a timeout replays it without moving money twice. Receive: fund the offer's incoming contract
(our key is its refund key), then read the decrypted preimage key from the contract account; an
invalid decryption is redeemed back with our key. Send: read and check the user's outgoing
contract, claim it with the preimage, or cancel it (signed with our key) so the user refunds now.
Registered in the adapter list under the pseudo-major `FEDIMINT_LNV1_MAJOR` (docs/development.md).
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from coincurve import PrivateKey

from fedimint_gw.domain.amount import Msat
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.errors import (
    FederationMisbehaved,
    FederationUnreachable,
    InvalidInput,
    NotFound,
)
from fedimint_gw.federation.adapter import AdapterContext
from fedimint_gw.federation.client import (
    CancelResult,
    EcashFees,
    EcashNotes,
    Feature,
    FederationInfo,
    GatewayRegistration,
    IncomingOutcome,
    IncomingRequest,
    IncomingState,
    NotesSummary,
    OutgoingContract,
    OutgoingState,
    RegistrationResult,
    RegistrationStatus,
)
from fedimint_gw.federation.fedimint import module_ops
from fedimint_gw.federation.fedimint.factory_base import FedimintFactoryBase
from fedimint_gw.federation.fedimint.mint import MintClient, receive_operation_id
from fedimint_gw.federation.fedimint.module_ops import funding_fee_of
from fedimint_gw.federation.fedimint.notes import FedimintNotes, MintOpState
from fedimint_gw.federation.fedimint.release import ReleaseOutcome, release_funding
from fedimint_gw.fedimint.config import ClientConfig, ConsensusVersion, parse_client_config
from fedimint_gw.fedimint.errors import FedimintProtocolError
from fedimint_gw.fedimint.ln import contracts as lc
from fedimint_gw.fedimint.ln.gateway import GatewayAnnouncement, LightningGateway
from fedimint_gw.fedimint.ln.items import (
    LN_KIND,
    CancelOutgoing,
    ContractOutput,
    LightningClientConfig,
    LightningInputV0,
    ln_input_bytes,
    ln_output_bytes,
)
from fedimint_gw.fedimint.ln.json_forms import account_from_json, offer_from_json
from fedimint_gw.fedimint.mint_types import MINT_KIND, MintClientConfig
from fedimint_gw.fedimint.oob import parse_oob_notes
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transaction import ModuleItem
from fedimint_gw.fedimint.transport import TransportSettings

FEDIMINT_LNV1_MAJOR = 101
"""The adapter registry keys adapters by an API major; Fedimint families use majors from 100 up
(the version actually spoken is negotiated with Fedimint's own rules)."""
NO_EXPIRY = 2**62
OVERPAY_FROM = ConsensusVersion(2, 1)
PREIMAGE_LOOK = 2.0  # s: the longest one any-guardian look for a decrypted preimage may take


def _unreachable(what: str, exc: FedimintProtocolError) -> FederationUnreachable:
    return FederationUnreachable(f"{what}: {exc.message}")


class FedimintLnv1Client:
    """`FederationClient` over Fedimint's protocol with the LNv1 module."""

    features = frozenset({Feature.SELF_REGISTRATION, Feature.CANCEL_OUTGOING, Feature.CONSENSUS_DECRYPTION})

    def __init__(self, ctx: AdapterContext, config: ClientConfig) -> None:
        ln = config.module_by_kind(LN_KIND)
        mint = config.module_by_kind(MINT_KIND)
        if ln is None or mint is None:
            raise InvalidInput("the federation serves no LNv1 (ln) and mint modules")
        self._ctx = ctx
        self._config = config
        self._ln_id = ln.instance_id
        self._ln = LightningClientConfig.from_bytes(ln.raw)
        settings = TransportSettings(call_timeout=ctx.request_timeout)
        self._api = FederationApi.from_config(config, ctx.session, settings)
        self._key = PrivateKey(ctx.gateway_secret)
        self._pub = self._key.public_key.format(compressed=True)
        self.gateway_pubkey = self._pub.hex()
        root = hashlib.sha256(b"fedimint-gw/fedimint-notes" + ctx.gateway_secret).digest()
        self._notes = FedimintNotes(
            ctx.wallet.db,
            FederationId(ctx.federation_id),
            mint.instance_id,
            MintClientConfig.from_bytes(mint.raw),
            root,
            ctx.clock,
            overpay=config.consensus_version >= OVERPAY_FROM,
        )
        peers = tuple((p, u.url) for p, u in sorted(config.api_endpoints.items()))
        self._mint = MintClient(self._notes, self._api, peers)

    def _method(self, endpoint: str) -> str:
        return f"module_{self._ln_id}_{endpoint}"

    async def _ask(self, endpoint: str, params: object = None, timeout: float | None = None) -> object:
        try:
            return await self._api.threshold_request(self._method(endpoint), params, timeout=timeout)
        except FedimintProtocolError as exc:
            raise _unreachable(endpoint, exc) from None

    async def info(self) -> FederationInfo:
        return FederationInfo(
            federation_id=self._config.federation_id(),
            name=self._config.federation_name or "",
            api_version=self._ctx.api_version,
            guardians=self._config.num_peers,
            threshold=self._config.threshold,
            tx_fee=Msat(self._ln.contract_output_fee),
            block_height=await self.block_height(),
        )

    async def balance(self) -> Msat:
        return await self._notes.balance()

    async def register(self, registration: GatewayRegistration) -> RegistrationResult:
        info = LightningGateway(
            mint_channel_id=registration.scid.to_int(),
            gateway_redeem_key=self._pub,
            node_pub_key=bytes.fromhex(registration.node_id),
            lightning_alias="fedimint-gw",
            api=registration.api_url,
            fee_base_msat=registration.fees.base_msat,
            fee_ppm=registration.fees.ppm,
            gateway_id=bytes.fromhex(registration.node_id),  # one id for every federation: GET /id
        )
        await self._ask("register_gateway", GatewayAnnouncement(info, False, registration.ttl_secs).to_json())
        expires = self._ctx.clock.now() + registration.ttl_secs
        return RegistrationResult(RegistrationStatus.REGISTERED, expires_at=expires)

    async def lookup_incoming(self, payment_hash: str) -> IncomingRequest | None:
        answer = await self._ask("offer", payment_hash)
        if answer is None:
            return None
        offer = offer_from_json(answer)
        if offer.hash.hex() != payment_hash:
            raise FederationMisbehaved("the guardians served an offer for another payment hash")
        return IncomingRequest(
            contract_id=offer.hash.hex(),
            payment_hash=payment_hash,
            amount=Msat(offer.amount),
            expiry=offer.expiry_time if offer.expiry_time is not None else NO_EXPIRY,
            data={"encrypted_preimage": offer.encrypted_preimage.hex()},
        )

    async def accept_incoming_contract(self, contract: dict[str, object], amount: Msat) -> IncomingRequest:
        raise InvalidInput("LNv1 invoices are made by the receiver's client, not by the gateway")

    async def block_height(self) -> int:
        answer = await self._ask("block_count")
        if isinstance(answer, bool) or not isinstance(answer, int) or answer < 0:
            raise FederationMisbehaved(f"block_count answered {answer!r}")
        return answer

    async def _run(self, op: Any) -> Any:
        return await self._mint.run(op)

    async def fund_incoming(self, request: IncomingRequest, operation_id: str) -> str:
        encrypted = bytes.fromhex(str(request.data["encrypted_preimage"]))
        pending = lc.DecryptedPreimage(lc.PreimageState.PENDING)
        contract = lc.IncomingContract(bytes.fromhex(request.payment_hash), encrypted, pending, self._pub)
        output = ModuleItem(self._ln_id, ln_output_bytes(ContractOutput(request.amount.value, contract)))
        op = await module_ops.prepare_fund(
            self._notes, operation_id, request.amount, self._ln.contract_output_fee, output
        )
        await self._mint.run(op, notes_later=True)  # the preimage may be read once it is accepted
        return contract.contract_id().hex()

    async def funding_fee(self, request: IncomingRequest, operation_id: str) -> Msat:
        """The stored funding's mint fees (inputs less change less the contract) and the
        Lightning module's contract fee."""
        return await funding_fee_of(self._notes, request, operation_id)

    async def abandon_funding(self, operation_id: str) -> bool:
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

    async def _account(self, contract_id: str, timeout: float | None = None) -> lc.ContractAccount | None:
        answer = await self._ask("account", contract_id, timeout)
        if answer is None:
            return None
        account = account_from_json(answer)
        if account.contract_id.hex() != contract_id:
            raise FederationMisbehaved(f"the guardians served another contract for {contract_id}")
        return account

    async def _shown_preimage(self, contract_id: str, timeout: float) -> bytes | None:
        """A decrypted preimage any one guardian shows for the contract and that hashes to its
        payment hash (it proves itself: no threshold needed), else None. No preimage means
        waiting for every guardian's answer, so the look is bounded by `timeout`."""

        def verify(_peer: int, answer: object) -> bytes | None:
            if answer is None:
                return None
            account = account_from_json(answer)
            if account.contract_id.hex() != contract_id:
                return None
            if not isinstance(account.contract, lc.FundedIncoming):
                return None
            incoming = account.contract.contract
            if incoming.decrypted_preimage.state is not lc.PreimageState.SOME:
                return None
            preimage = lc.preimage_of_key(incoming.decrypted_preimage.key)
            return preimage if hashlib.sha256(preimage).digest() == incoming.hash else None

        try:
            return await self._api.first_valid(self._method("account"), contract_id, verify, timeout=timeout)
        except FedimintProtocolError:
            return None

    async def await_preimage(self, contract_id: str, timeout: float) -> IncomingOutcome:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            # A silent guardian must not hold the look past the caller's deadline, nor for long
            # when the others said "not yet": the loop looks again (between 1 and 2 s a look).
            look = min(PREIMAGE_LOOK, max(1.0, deadline - loop.time()))
            preimage = await self._shown_preimage(contract_id, look)
            if preimage is not None:
                return IncomingOutcome(IncomingState.PREIMAGE, preimage)
            account = await self._account(contract_id)
            if account is None or not isinstance(account.contract, lc.FundedIncoming):
                raise NotFound(f"no incoming contract {contract_id}")
            incoming = account.contract.contract
            state = incoming.decrypted_preimage.state
            if state is lc.PreimageState.SOME:
                preimage = lc.preimage_of_key(incoming.decrypted_preimage.key)
                if hashlib.sha256(preimage).digest() != incoming.hash:
                    raise FederationMisbehaved("the decrypted preimage does not match the payment hash")
                return IncomingOutcome(IncomingState.PREIMAGE, preimage)
            if state is lc.PreimageState.INVALID:
                back = await self._redeem(f"ln-refund:{contract_id}", contract_id, account.amount, None)
                return IncomingOutcome(IncomingState.REFUNDED, refunded=back)
            if loop.time() >= deadline:
                return IncomingOutcome(IncomingState.FUNDED)
            await asyncio.sleep(min(0.5, max(0.0, deadline - loop.time())))

    async def _redeem(self, operation_id: str, contract_id: str, amount: int, witness: bytes | None) -> Msat:
        """Spend a contract account we may spend into notes of ours (idempotent per operation)."""
        existing = await self._notes.get(operation_id)
        if existing is None:
            if amount <= 0:
                raise NotFound(f"contract {contract_id} holds nothing to redeem")
            spend = LightningInputV0(bytes.fromhex(contract_id), amount, witness)
            item = ModuleItem(self._ln_id, ln_input_bytes(spend))
            value = amount - self._ln.contract_input_fee
            existing = await module_ops.prepare_redeem(
                self._notes, operation_id, value, item, self._ctx.gateway_secret
            )
        done = await self._run(existing)
        return Msat(int(done.result.get("received_msat", 0)))

    async def verify_outgoing(self, contract_id: str) -> OutgoingContract:
        account = await self._account(contract_id)
        if account is None or not isinstance(account.contract, lc.OutgoingContract):
            raise NotFound(f"no outgoing contract {contract_id}")
        contract = account.contract
        if contract.cancelled:
            state = OutgoingState.CANCELLED
        elif account.amount == 0:
            state = OutgoingState.CLAIMED
        else:
            state = OutgoingState.FUNDED
        return OutgoingContract(
            contract_id=contract_id,
            payment_hash=contract.hash.hex(),
            amount=Msat(account.amount),
            timelock_height=contract.timelock,
            state=state,
            gateway_key_matches=contract.gateway_key == self._pub,
        )

    async def claim_outgoing(self, contract_id: str, preimage: bytes) -> Msat:
        operation_id = f"ln-claim:{contract_id}"
        if await self._notes.get(operation_id) is None:
            account = await self._account(contract_id)
            if account is None or not isinstance(account.contract, lc.OutgoingContract):
                raise NotFound(f"no outgoing contract {contract_id}")
            if hashlib.sha256(preimage).digest() != account.contract.hash:
                raise InvalidInput("the preimage does not match the contract's hash")
            return await self._redeem(operation_id, contract_id, account.amount, preimage)
        return await self._redeem(operation_id, contract_id, 0, preimage)

    async def check_send_auth(self, contract_id: str, invoice: str, auth: object) -> bool:
        """LNv1 sends carry `preimage_auth`, which only internal swaps use: the contract itself
        (locked to our key, for this hash and amount) is the authorization."""
        return True

    async def cancel_outgoing(self, contract_id: str) -> CancelResult:
        operation_id = f"ln-cancel:{contract_id}"
        op = await self._notes.get(operation_id)
        if op is None:
            account = await self._account(contract_id)
            if account is None or not isinstance(account.contract, lc.OutgoingContract):
                raise NotFound(f"no outgoing contract {contract_id}")
            signature = self._key.sign_schnorr(account.contract.cancellation_message())
            cancel = CancelOutgoing(bytes.fromhex(contract_id), signature)
            item = ModuleItem(self._ln_id, ln_output_bytes(cancel))
            op = await module_ops.prepare_plain(self._notes, operation_id, [item])
        await self._run(op)
        return CancelResult(contract_id)

    async def spend_ecash(self, amount: Msat, operation_id: str) -> EcashNotes:
        result = await self._mint.spend(operation_id, amount)
        return EcashNotes(result.amount, result.oob, await self._notes.spend_fee(operation_id))

    async def ecash_fees(self, amount: Msat) -> EcashFees:
        fees = self._notes.note_fees(amount)
        return EcashFees(spend=Msat(fees.spend), reissue=Msat(fees.reissue))

    async def receive_ecash(self, notes: str) -> Msat:
        try:
            oob = parse_oob_notes(notes)
        except (FedimintProtocolError, ValueError) as exc:
            raise InvalidInput(f"not Fedimint e-cash notes: {exc}") from None
        return (await self._mint.receive(oob)).received

    async def inspect_ecash(self, notes: str) -> NotesSummary:
        try:
            oob = parse_oob_notes(notes)
        except (FedimintProtocolError, ValueError) as exc:
            raise InvalidInput(f"not Fedimint e-cash notes: {exc}") from None
        fingerprint = hashlib.sha256(
            b"".join(n.spend_key for _, ns in sorted(oob.notes.items()) for n in ns)
        ).hexdigest()
        received = await self._notes.get(receive_operation_id(oob)) is not None
        prefix = oob.federation_id_prefix.hex()
        fid = self._ctx.federation_id if self._ctx.federation_id.startswith(prefix) else prefix
        return NotesSummary(fid, Msat(oob.total_msat), fingerprint, received, self._notes.reissue_fee(oob))

    async def resume_operations(self) -> int:
        """End the operations a crash cut short (`MintClient.resume`): fundings only if a
        threshold accepted them (else their payment flow decides), every other one driven again
        or, for a volatile spend, its notes taken back."""
        return len(await self._mint.resume(fundings=(module_ops.FUND,)))

    async def close(self) -> None:
        await self._mint.close()
        await self._api.close()


class FedimintLnv1Factory(FedimintFactoryBase):
    """The adapter factory: Fedimint's protocol, LNv1 module."""

    major = FEDIMINT_LNV1_MAJOR
    name = "fedimint-lnv1"

    def create(self, ctx: AdapterContext) -> FedimintLnv1Client:
        return FedimintLnv1Client(ctx, parse_client_config(dict(ctx.config)))


FACTORY = FedimintLnv1Factory()
