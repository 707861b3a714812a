"""The mint module, server side: checking inputs and outputs, and one guardian's signing.

Checks (as read in `modules/fedimint-mint-server`, v0.5-v0.7):
- an input names a known tier, its note's signature verifies against that tier's aggregate
  key, and its nonce is not in the spent set (nor twice in one transaction);
- an output names a known tier and a valid G1 blind nonce never signed before;
- each input and output pays the fee `base + amount * ppm / 10^6`.
The input's key for the transaction signature is the note's nonce (a secp256k1 public key).
Errors are encoded as the mint's input/output error enums (variant indices are our reading:
input 0 SpentCoin, 1 InvalidAmountTier(Amount), 2 InvalidSignature; output 0
InvalidAmountTier(Amount), 2 BlindNonceAlreadyUsed, 3 InvalidBlindNonce (ours)).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from fedimint_gw.crypto.bls import tbs
from fedimint_gw.crypto.bls.fields import R
from fedimint_gw.crypto.errors import CryptoError
from fedimint_gw.fedimint.encoding import UnknownVariant, decode_whole, encode
from fedimint_gw.fedimint.errors import DecodeError
from fedimint_gw.fedimint.mint_types import (
    MintClientConfig,
    MintInputV0,
    MintOutputOutcomeV0,
    MintOutputV0,
    read_mint_input,
    read_mint_output,
    write_mint_output_outcome,
)


class MintError(enum.Enum):
    """Why the mint refuses an input or output: (variant, is an input error)."""

    SPENT_COIN = (0, True)
    INPUT_AMOUNT_TIER = (1, True)
    INVALID_SIGNATURE = (2, True)
    OUTPUT_AMOUNT_TIER = (0, False)
    BLIND_NONCE_USED = (2, False)
    INVALID_BLIND_NONCE = (3, False)


@dataclass(frozen=True)
class MintRefusal(Exception):
    """A mint input or output the federation refuses, with its encoded module error."""

    error: MintError
    detail: str
    amount: int = 0

    def encoded(self) -> bytes:
        """The module error's consensus encoding (an enum variant)."""
        variant, _ = self.error.value
        body = encode(lambda w: w.u64(self.amount)) if self.error in _WITH_AMOUNT else b""
        return encode(lambda w: w.variant(variant, body))

    def __str__(self) -> str:
        return self.detail


_WITH_AMOUNT = (MintError.INPUT_AMOUNT_TIER, MintError.OUTPUT_AMOUNT_TIER)


@dataclass(frozen=True)
class CheckedInput:
    amount: int
    nonce: bytes


@dataclass(frozen=True)
class CheckedOutput:
    amount: int
    blind_nonce: bytes


class MintVerifier:
    """Public-key checks of mint inputs and outputs (no secret involved)."""

    def __init__(self, config: MintClientConfig) -> None:
        self.config = config
        self._keys = {a: tbs.AggregatePublicKey.decode(k) for a, k in config.tbs_pks.items()}

    def fee(self, amount: int) -> int:
        return self.config.fee_consensus.fee(amount)

    def check_input(self, data: bytes) -> CheckedInput:
        """Decode and check one input (not the spent set: the sequencer owns that)."""
        value = decode_whole(data, read_mint_input)
        if isinstance(value, UnknownVariant):
            raise DecodeError(f"unknown mint input version {value.variant}")
        return self._check_note(value)

    def _check_note(self, value: MintInputV0) -> CheckedInput:
        key = self._keys.get(value.amount)
        if key is None:
            raise MintRefusal(
                MintError.INPUT_AMOUNT_TIER, f"no note tier of {value.amount} msat", value.amount
            )
        try:
            valid = tbs.verify(
                tbs.message_from_bytes(value.note.nonce), tbs.Signature.decode(value.note.signature), key
            )
        except CryptoError:
            valid = False
        if not valid:
            raise MintRefusal(MintError.INVALID_SIGNATURE, "the note's signature is not the federation's")
        return CheckedInput(value.amount, value.note.nonce)

    def check_output(self, data: bytes) -> CheckedOutput:
        """Decode and check one output (not the used blind nonces: the sequencer owns that)."""
        value = decode_whole(data, read_mint_output)
        if isinstance(value, UnknownVariant):
            raise DecodeError(f"unknown mint output version {value.variant}")
        return self._check_output(value)

    def _check_output(self, value: MintOutputV0) -> CheckedOutput:
        if value.amount not in self._keys:
            raise MintRefusal(
                MintError.OUTPUT_AMOUNT_TIER, f"no note tier of {value.amount} msat", value.amount
            )
        try:
            tbs.BlindedMessage.decode(value.blind_nonce)
        except CryptoError:
            raise MintRefusal(MintError.INVALID_BLIND_NONCE, "the blind nonce is not a G1 point") from None
        return CheckedOutput(value.amount, value.blind_nonce)


class FaultMode(enum.Enum):
    """A guardian's injected behaviour."""

    HONEST = "honest"
    OFFLINE = "offline"
    BYZANTINE = "byzantine"
    UNSIGNING = "unsigning"  # gives no signature share for any note until the fault is lifted
    SILENT = "silent"  # takes part in consensus; never answers an API request it gets meanwhile


class MintGuardian:
    """One guardian: only its own key shares; signs blind nonces of accepted outputs."""

    def __init__(self, peer_id: int, shares: Mapping[int, bytes]) -> None:
        self.peer_id = peer_id
        self._shares = {a: tbs.SecretKeyShare.decode(s) for a, s in shares.items()}
        self.fault = FaultMode.HONEST

    def sign(self, amount: int, blind_nonce: bytes) -> bytes:
        """This guardian's `MintOutputOutcome::V0` (encoded): its share `B * sk_i`.

        A byzantine guardian signs with a wrong key (`sk_i + 1`): a well-formed share that only
        the client's share check catches.
        """
        share = self._shares[amount]
        if self.fault is FaultMode.BYZANTINE:
            share = tbs.SecretKeyShare((share.scalar + 1) % R)
        signed = tbs.sign_message(tbs.BlindedMessage.decode(blind_nonce), share)
        outcome = MintOutputOutcomeV0(signed.encode())
        return encode(lambda w: write_mint_output_outcome(w, outcome))
