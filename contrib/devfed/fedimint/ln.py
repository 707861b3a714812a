"""devfed's LNv1 module (`ln`, instance 0), server side: checks, effects, threshold decryption.

Read in `modules/fedimint-ln-server` (v0.7):
- input: the contract account exists and holds the amount; an outgoing contract is spent by its
  gateway key with the preimage while `timelock + 1 > block count` and not cancelled, else by its
  user key; an incoming contract is not spendable while its decryption is pending, then by the
  decrypted key (a public key) or, if the decryption was invalid, by the gateway key;
- outputs: funding a contract (never zero; an incoming one needs an offer for its hash of at most
  that amount, and its decryption starts: the offer is removed); an offer (its ciphertext must
  verify, and neither the ciphertext nor the hash was offered before); a cancellation of an
  outgoing contract signed by its gateway key over the cancellation message;
- a contract is funded once (module consensus 2.1's rule: no top-up, no offer for a hash whose
  account exists).
Decryption: every online guardian makes its own share with its own key share; the shares are
verified against the public key set and combined once a threshold agree (a byzantine share is
dropped). The key is valid when it is 33 bytes, a public key, and sha256(sha256(key)) is the hash.
Error variants are our reading of upstream's `LightningInputError`/`LightningOutputError`.
"""

from __future__ import annotations

import enum
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from coincurve import PublicKey, PublicKeyXOnly

from contrib.devfed.fedimint.ln_store import LnStore
from contrib.devfed.fedimint.mint import FaultMode
from fedimint_gw.crypto.bls import threshold_crypto as tc
from fedimint_gw.crypto.bls.fields import R
from fedimint_gw.crypto.errors import CryptoError
from fedimint_gw.fedimint.encoding import UnknownVariant, decode_whole, encode
from fedimint_gw.fedimint.errors import DecodeError
from fedimint_gw.fedimint.ln.contracts import (
    ContractAccount,
    DecryptedPreimage,
    FundedIncoming,
    IncomingContract,
    IncomingContractOffer,
    OutgoingContract,
    PreimageState,
    payment_hash_of_key,
)
from fedimint_gw.fedimint.ln.items import (
    CancelOutcomeV0,
    CancelOutgoing,
    ContractOutcomeV0,
    ContractOutput,
    LightningClientConfig,
    LightningOutputOutcome,
    OfferOutcomeV0,
    read_ln_input,
    read_ln_output,
)
from fedimint_gw.fedimint.transaction import OutPoint

log = logging.getLogger("devfed.fedimint")
LN_INSTANCE_ID = 0


class LnError(enum.Enum):
    """(variant, is an input error)."""

    UNKNOWN_CONTRACT = (0, True)
    INSUFFICIENT_FUNDS = (1, True)
    MISSING_PREIMAGE = (2, True)
    INVALID_PREIMAGE = (3, True)
    CONTRACT_NOT_READY = (4, True)
    NO_OFFER = (0, False)
    INSUFFICIENT_INCOMING_FUNDING = (1, False)
    ZERO_OUTPUT = (2, False)
    INVALID_ENCRYPTED_PREIMAGE = (3, False)
    DUPLICATE_ENCRYPTED_PREIMAGE = (4, False)
    UNKNOWN_OUTPUT_CONTRACT = (5, False)
    NOT_OUTGOING_CONTRACT = (6, False)
    INVALID_CANCELLATION_SIGNATURE = (7, False)
    ALREADY_FUNDED = (8, False)


@dataclass(frozen=True)
class LnRefusal(Exception):
    error: LnError
    detail: str

    def encoded(self) -> bytes:
        return encode(lambda w: w.variant(self.error.value[0], b""))

    def __str__(self) -> str:
        return self.detail


@dataclass
class LnTx:
    """One transaction's view: accounts and offers as its earlier items left them."""

    block_count: int
    accounts: dict[bytes, ContractAccount] = field(default_factory=dict)
    new_offers: dict[bytes, IncomingContractOffer] = field(default_factory=dict)
    funded_offers: set[bytes] = field(default_factory=set)
    ciphertexts: set[bytes] = field(default_factory=set)
    outcomes: dict[int, LightningOutputOutcome] = field(default_factory=dict)
    to_decrypt: list[bytes] = field(default_factory=list)


def _key_ok(key: bytes) -> bool:
    try:
        PublicKey(key)
    except (ValueError, TypeError):
        return False
    return True


class LnConsensus:
    """The module's consensus rules over its store; the sequencer calls it under its lock."""

    def __init__(
        self,
        store: LnStore,
        config: LightningClientConfig,
        pk_set: tc.PublicKeySet,
        guardians: list[LnGuardian],
        threshold: int,
    ) -> None:
        self.store = store
        self.config = config
        self.pk_set = pk_set
        self.guardians = guardians
        self.threshold = threshold
        self.instance_id = LN_INSTANCE_ID

    def begin(self) -> LnTx:
        return LnTx(self.store.block_count())

    def _account(self, tx: LnTx, contract_id: bytes) -> ContractAccount | None:
        return tx.accounts.get(contract_id) or self.store.account(contract_id)

    def check_input(self, tx: LnTx, data: bytes) -> tuple[int, bytes, int]:
        """(amount, spending key, fee) of one input; LnRefusal or DecodeError."""
        value = decode_whole(data, read_ln_input)
        if isinstance(value, UnknownVariant):
            raise DecodeError(f"unknown ln input version {value.variant}")
        account = self._account(tx, value.contract_id)
        if account is None:
            raise LnRefusal(LnError.UNKNOWN_CONTRACT, f"no contract {value.contract_id.hex()}")
        if account.amount < value.amount:
            raise LnRefusal(LnError.INSUFFICIENT_FUNDS, f"the contract holds {account.amount} msat")
        contract = account.contract
        if isinstance(contract, OutgoingContract):
            if contract.timelock + 1 > tx.block_count and not contract.cancelled:
                if value.witness is None:
                    raise LnRefusal(LnError.MISSING_PREIMAGE, "the gateway must show the preimage")
                if hashlib.sha256(value.witness).digest() != contract.hash:
                    raise LnRefusal(LnError.INVALID_PREIMAGE, "the preimage does not match the hash")
                key = contract.gateway_key
            else:
                key = contract.user_key
        else:
            decrypted = contract.contract.decrypted_preimage
            if decrypted.state is PreimageState.PENDING:
                raise LnRefusal(LnError.CONTRACT_NOT_READY, "the preimage is not decrypted yet")
            key = decrypted.key if decrypted.state is PreimageState.SOME else contract.contract.gateway_key
        tx.accounts[value.contract_id] = replace(account, amount=account.amount - value.amount)
        return value.amount, key, self.config.contract_input_fee

    def check_output(self, tx: LnTx, out_idx: int, data: bytes, out_point: OutPoint) -> tuple[int, int]:
        """(amount, fee) of one output; its effect is kept in `tx`."""
        value = decode_whole(data, read_ln_output)
        if isinstance(value, UnknownVariant):
            raise DecodeError(f"unknown ln output version {value.variant}")
        if isinstance(value, ContractOutput):
            return self._fund(tx, out_idx, value, out_point), self.config.contract_output_fee
        if isinstance(value, IncomingContractOffer):
            self._offer(tx, out_idx, value)
            return 0, 0
        self._cancel(tx, out_idx, value)
        return 0, 0

    def _fund(self, tx: LnTx, out_idx: int, value: ContractOutput, out_point: OutPoint) -> int:
        contract = value.contract
        cid = contract.contract_id()
        if value.amount == 0:
            raise LnRefusal(LnError.ZERO_OUTPUT, "a contract output of zero msat")
        if self._account(tx, cid) is not None:
            raise LnRefusal(LnError.ALREADY_FUNDED, f"contract {cid.hex()} is funded already")
        if isinstance(contract, IncomingContract):
            offer = tx.new_offers.get(contract.hash) or self.store.offer(contract.hash)
            if offer is None or contract.hash in tx.funded_offers:
                raise LnRefusal(LnError.NO_OFFER, f"no offer for hash {contract.hash.hex()}")
            if value.amount < offer.amount:
                raise LnRefusal(LnError.INSUFFICIENT_INCOMING_FUNDING, f"the offer asks {offer.amount} msat")
            if contract.encrypted_preimage != offer.encrypted_preimage:
                raise LnRefusal(LnError.NO_OFFER, "the contract's ciphertext is not the offer's")
            if not _key_ok(contract.gateway_key):
                raise LnRefusal(LnError.ZERO_OUTPUT, "the gateway key is not a public key")
            pending = replace(contract, decrypted_preimage=DecryptedPreimage(PreimageState.PENDING))
            tx.accounts[cid] = ContractAccount(value.amount, FundedIncoming(pending, out_point))
            tx.funded_offers.add(contract.hash)
            tx.to_decrypt.append(cid)
            tx.outcomes[out_idx] = ContractOutcomeV0(cid, DecryptedPreimage(PreimageState.PENDING))
        else:
            tx.accounts[cid] = ContractAccount(value.amount, contract)
            tx.outcomes[out_idx] = ContractOutcomeV0(cid, None)
        return value.amount

    def _offer(self, tx: LnTx, out_idx: int, offer: IncomingContractOffer) -> None:
        try:
            valid = tc.verify_ciphertext(tc.Ciphertext.from_bytes(offer.encrypted_preimage))
        except CryptoError:
            valid = False
        if not valid:
            raise LnRefusal(LnError.INVALID_ENCRYPTED_PREIMAGE, "the encrypted preimage does not verify")
        digest = hashlib.sha256(offer.encrypted_preimage).digest()
        if (
            digest in tx.ciphertexts
            or self.store.ciphertext_used(digest)
            or offer.hash in tx.new_offers
            or self.store.offer(offer.hash) is not None
            or self._account(tx, offer.hash) is not None
        ):
            raise LnRefusal(LnError.DUPLICATE_ENCRYPTED_PREIMAGE, "this preimage or hash was offered before")
        tx.ciphertexts.add(digest)
        tx.new_offers[offer.hash] = offer
        tx.outcomes[out_idx] = OfferOutcomeV0(offer.hash)

    def _cancel(self, tx: LnTx, out_idx: int, value: CancelOutgoing) -> None:
        account = self._account(tx, value.contract_id)
        if account is None:
            raise LnRefusal(LnError.UNKNOWN_OUTPUT_CONTRACT, f"no contract {value.contract_id.hex()}")
        contract = account.contract
        if not isinstance(contract, OutgoingContract):
            raise LnRefusal(LnError.NOT_OUTGOING_CONTRACT, "only outgoing contracts can be cancelled")
        try:
            valid = PublicKeyXOnly(contract.gateway_key[1:]).verify(
                value.gateway_signature, contract.cancellation_message()
            )
        except (ValueError, TypeError):
            valid = False
        if not valid:
            raise LnRefusal(LnError.INVALID_CANCELLATION_SIGNATURE, "the cancellation is not the gateway's")
        tx.accounts[value.contract_id] = replace(account, contract=replace(contract, cancelled=True))
        tx.outcomes[out_idx] = CancelOutcomeV0(value.contract_id)

    def apply(self, tx: LnTx, txid: bytes) -> None:
        """Write the transaction's effects (inside the store's atomic block)."""
        for account in tx.accounts.values():
            self.store.put_account(account)
        for digest in tx.ciphertexts:
            self.store.mark_ciphertext(digest)
        for offer in tx.new_offers.values():
            if offer.hash not in tx.funded_offers:
                self.store.put_offer(offer)
        for payment_hash in tx.funded_offers:
            self.store.remove_offer(payment_hash)
        for out_idx, outcome in tx.outcomes.items():
            self.store.put_outcome(txid, out_idx, outcome)

    def decrypt_pending(self) -> list[bytes]:
        """Try every pending incoming contract; the contract ids whose decryption finished."""
        done = []
        for account in self.store.accounts():
            c = account.contract
            pending = (
                isinstance(c, FundedIncoming) and c.contract.decrypted_preimage.state is PreimageState.PENDING
            )
            if isinstance(c, FundedIncoming) and pending and self._decrypt(account, c):
                done.append(c.contract.hash)
        return done

    def _decrypt(self, account: ContractAccount, funded: FundedIncoming) -> bool:
        ct = tc.Ciphertext.from_bytes(funded.contract.encrypted_preimage)
        shares: list[tuple[int, tc.DecryptionShare]] = []
        for guardian in self.guardians:
            share = guardian.decryption_share(ct)
            if share is None:
                continue
            if tc.verify_decryption_share(self.pk_set.public_key_share(guardian.peer_id), share, ct):
                shares.append((guardian.peer_id, share))
            else:
                log.info("ln: guardian %d's decryption share does not verify; dropped", guardian.peer_id)
        if len(shares) < self.threshold:
            log.info(
                "ln: %d valid decryption shares, %d needed; decryption stays pending",
                len(shares),
                self.threshold,
            )
            return False
        key = tc.decrypt(self.pk_set, shares, ct)
        valid = len(key) == 33 and payment_hash_of_key(key) == funded.contract.hash and _key_ok(key)
        decrypted = (
            DecryptedPreimage(PreimageState.SOME, key) if valid else DecryptedPreimage(PreimageState.INVALID)
        )
        contract = replace(funded.contract, decrypted_preimage=decrypted)
        with self.store.store.atomic():
            self.store.put_account(replace(account, contract=replace(funded, contract=contract)))
            out = funded.out_point
            self.store.put_outcome(out.txid, out.out_idx, ContractOutcomeV0(contract.hash, decrypted))
        log.info("ln: contract %s decrypted: %s", contract.hash.hex(), decrypted.state.name)
        return True


class LnGuardian:
    """One guardian's threshold_crypto key share; `fault` is read from its mint guardian."""

    def __init__(self, peer_id: int, secret: bytes, fault: Callable[[], FaultMode]) -> None:
        self.peer_id = peer_id
        self._share = tc.SecretKeyShare.decode(secret)
        self._fault = fault

    def decryption_share(self, ct: tc.Ciphertext) -> tc.DecryptionShare | None:
        """Its share `U * sk_i` (None when offline; made with a wrong key when byzantine)."""
        fault = self._fault()
        if fault is FaultMode.OFFLINE:
            return None
        share = self._share
        if fault is FaultMode.BYZANTINE:
            share = tc.SecretKeyShare((share.scalar + 1) % R)
        return tc.decrypt_share(share, ct)
