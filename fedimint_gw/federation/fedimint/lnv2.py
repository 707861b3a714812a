"""The gateway's side of Fedimint's LNv2 module in one federation (``modules/fedimint-gwv2-client``).

Receive: a receiver's ``IncomingContract`` is checked (refund key ours, amount, not expired,
ciphertext bound to its commitment) before the gateway's node makes an invoice; on the HTLC the
gateway funds it from its notes (a stored operation: state before side effects), asks every
guardian for its decryption key share, verifies each, aggregates a threshold, checks the
aggregate and decrypts. A preimage that matches settles the HTLC (the receiver claims the
contract); one that does not is refunded: the gateway spends the contract with its refund key.

Send: a sender's ``OutgoingContract`` at an out point is checked on a threshold answer (it
exists unspent, its id is the contract we were given, its claim key is ours, enough blocks
left) and the sender's ``auth`` (refund key, over the consensus hash of the invoice); after a
payment the gateway claims it with the preimage (a stored operation); when the payment cannot
succeed it hands the sender a forfeit signature instead (never both: the caller decides once).

Every federation call that moves money goes through :class:`MintClient.run`: submit, accept
only a threshold's outcome, check for an earlier acceptance before giving up, collect notes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from fedimint_gw.clock import Clock
from fedimint_gw.domain.amount import Msat
from fedimint_gw.errors import FederationMisbehaved, FederationUnreachable, InvalidInput, NotFound
from fedimint_gw.federation.client import IncomingOutcome, IncomingState
from fedimint_gw.federation.fedimint.mint import MintClient
from fedimint_gw.federation.fedimint.notes import FedimintNotes
from fedimint_gw.fedimint.errors import DecodeError, FedimintProtocolError, ThresholdNotReached
from fedimint_gw.fedimint.lnv2 import api as lnv2_api
from fedimint_gw.fedimint.lnv2 import items
from fedimint_gw.fedimint.lnv2.config import Lnv2ClientConfig
from fedimint_gw.fedimint.lnv2.contracts import ImageKind, IncomingContract, OutgoingContract
from fedimint_gw.fedimint.lnv2.keys import public_key_of, sign_schnorr
from fedimint_gw.fedimint.lnv2.transactions import lnv2_input, lnv2_output
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transaction import OutPoint

log = logging.getLogger("fedimint_gw.fedimint.lnv2")

FUND = "lnv2_fund"
REFUND = "lnv2_refund"
CLAIM = "lnv2_claim"
KINDS = (FUND, REFUND, CLAIM)


@dataclass(frozen=True)
class CheckedOutgoing:
    """An outgoing contract the federation holds for us at ``outpoint``."""

    outpoint: OutPoint
    contract: OutgoingContract
    blocks_left: int


class Lnv2Gateway:
    """LNv2 flows of the gateway in one federation, over its notes and mint client."""

    def __init__(
        self,
        notes: FedimintNotes,
        mint: MintClient,
        api: FederationApi,
        instance: int,
        config: Lnv2ClientConfig,
        gateway_secret: bytes,
        clock: Clock,
        *,
        min_blocks_left: int = 6,
    ) -> None:
        self._notes = notes
        self._mint = mint
        self._api = api
        self._instance = instance
        self.instance = instance
        self.config = config
        self._secret = gateway_secret
        self._clock = clock
        self._min_blocks = min_blocks_left

    @property
    def module_public_key(self) -> bytes:
        """The gateway's key in this federation: refund key of receives, claim key of sends."""
        return public_key_of(self._secret)

    # --- receive ------------------------------------------------------------------------------

    def check_incoming(self, contract: IncomingContract, amount: Msat) -> None:
        """InvalidInput unless we can safely fund ``contract`` for an invoice of ``amount``."""
        commitment = contract.commitment
        if commitment.refund_pk != self.module_public_key:
            raise InvalidInput("the contract's refund_pk is not this gateway's module key")
        if commitment.payment_image.kind is not ImageKind.HASH:
            raise InvalidInput("only payment hashes are supported (no payment points over Lightning)")
        if commitment.amount == 0:
            raise InvalidInput("the contract pays nothing")
        if commitment.amount > amount.value:
            raise InvalidInput(f"the contract pays {commitment.amount} msat, over the invoice ({amount})")
        if commitment.expiration <= self._clock.now():
            raise InvalidInput("the contract has expired")
        if not contract.verify():
            raise InvalidInput("the contract's ciphertext is not bound to its commitment")

    async def fund_incoming(self, contract: IncomingContract, operation_id: str) -> OutPoint:
        """Fund the contract from our notes (stored first, replayable); its out point."""
        amount = Msat(contract.commitment.amount)
        output = lnv2_output(self._instance, contract)
        op = await self._notes.prepare_fund(operation_id, FUND, amount, self._fee(amount), output)
        await self._mint.run(op, notes_later=True)  # decryption may start once it is accepted
        return OutPoint(op.tx.txid(), len(op.outputs))

    async def incoming_outcome(
        self, contract: IncomingContract, outpoint: OutPoint, operation_id: str
    ) -> IncomingOutcome:
        """PREIMAGE once decrypted; REFUNDED (our funding back) if it decrypts to garbage;
        PENDING while fewer than a threshold of guardians gave valid shares."""
        try:
            agg = await lnv2_api.aggregate_decryption_key(
                self._api, self._instance, self.config, contract, outpoint
            )
        except ThresholdNotReached as exc:
            log.info("decryption of %s pending: %s", outpoint.txid.hex(), exc.message)
            return IncomingOutcome(IncomingState.PENDING)
        except DecodeError as exc:  # we funded only verified contracts
            raise FederationMisbehaved(f"funded contract does not verify: {exc.message}") from None
        preimage = contract.decrypt(agg)
        if preimage is not None:
            return IncomingOutcome(IncomingState.PREIMAGE, preimage)
        amount = Msat(contract.commitment.amount)
        item, key = lnv2_input(self._instance, items.IncomingInput(outpoint, agg), self._secret)
        op = await self._notes.prepare_claim(operation_id, REFUND, item, key, amount, self._fee(amount))
        done = await self._mint.run(op)
        return IncomingOutcome(
            IncomingState.REFUNDED, refunded=Msat(int(done.result.get("received_msat", 0)))
        )

    # --- send ---------------------------------------------------------------------------------

    async def check_outgoing(self, outpoint: OutPoint, contract: OutgoingContract) -> CheckedOutgoing:
        """The contract as a threshold of guardians hold it, locked to us with time to pay."""
        try:
            found = await lnv2_api.outgoing_contract_expiration(self._api, self._instance, outpoint)
        except FedimintProtocolError as exc:
            raise FederationUnreachable(f"outgoing contract not confirmed: {exc.message}") from None
        if found is None:
            raise NotFound("no unspent outgoing contract at that out point")
        contract_id, blocks_left = found
        if contract_id != contract.contract_id():
            raise InvalidInput("the out point holds another contract than the one sent")
        if contract.claim_pk != self.module_public_key:
            raise InvalidInput("the outgoing contract is keyed to another gateway")
        if blocks_left < self._min_blocks:
            raise InvalidInput(f"the contract expires in {blocks_left} blocks, {self._min_blocks} needed")
        return CheckedOutgoing(outpoint, contract, blocks_left)

    @staticmethod
    def send_auth_valid(contract: OutgoingContract, bolt11: str, auth: bytes) -> bool:
        """The sender (refund key) signed the consensus hash of exactly this invoice."""
        return contract.verify_invoice_auth(items.invoice_auth_message(bolt11), auth)

    async def claim_outgoing(self, checked: CheckedOutgoing, preimage: bytes, operation_id: str) -> Msat:
        """Claim the contract with the preimage (stored first, replayable); ecash gained."""
        if not checked.contract.payment_image.matches(preimage):
            raise InvalidInput("the preimage does not match the contract")
        amount = Msat(checked.contract.amount)
        witness = items.OutgoingWitness(items.WitnessKind.CLAIM, preimage)
        item, key = lnv2_input(self._instance, items.OutgoingInput(checked.outpoint, witness), self._secret)
        op = await self._notes.prepare_claim(operation_id, CLAIM, item, key, amount, self._fee(amount))
        done = await self._mint.run(op)
        return Msat(int(done.result["received_msat"]))

    def forfeit_signature(self, contract: OutgoingContract) -> bytes:
        """What lets the sender cancel now (Schnorr by our claim key over the contract id; fresh
        randomness each time, every one valid). The caller must never claim the contract
        afterwards: the sender may cancel at any moment from now on."""
        return sign_schnorr(self._secret, contract.forfeit_message())

    # --- restart ------------------------------------------------------------------------------

    async def resume(self) -> list[str]:
        """End every operation a crash cut short (see `MintClient.resume`): a funding is only
        finished if a threshold accepted it (its receive flow decides about the others: funding
        a contract whose HTLC is gone would pay the receiver for nothing); refunds, claims and
        mint operations are driven again. The ids settled now."""
        return await self._mint.resume(fundings=(FUND,), others=(REFUND, CLAIM))

    def _fee(self, amount: Msat) -> Msat:
        return Msat(self.config.fee.fee(amount.value))
