"""LNv2 contracts (``modules/fedimint-lnv2-common/src/contracts.rs``), field orders as upstream:

    PaymentImage = Hash(sha256, 32) | Point(PublicKey, 33)            (enum, no default variant)
    Commitment { payment_image, amount: Amount, expiration: u64, claim_pk, refund_pk, ephemeral_pk }
    IncomingContract { commitment: Commitment, ciphertext: tpe::CipherText (176 bytes) }
    OutgoingContract { payment_image, amount, expiration, claim_pk, refund_pk, ephemeral_pk }
    ContractId = sha256(consensus encoding of the contract)

The tpe ciphertext of an incoming contract is bound to ``sha256(encoding of its Commitment)``.
An outgoing contract's forfeit message is its contract id: the gateway signs it with ``claim_pk``
(BIP-340) to let the sender cancel; the sender authorizes a send with ``refund_pk`` over the
consensus hash of the invoice (:mod:`.invoice`). Amounts are msat; expirations are block heights.

JSON forms are serde's: ``{"Hash": hex}`` / ``{"Point": hex}``, amounts as integers (msat),
keys as hex, the ciphertext as in :meth:`CipherText.to_json`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from coincurve import PrivateKey

from fedimint_gw.crypto.bls import tpe
from fedimint_gw.crypto.errors import CryptoError
from fedimint_gw.fedimint import json_fields as jf
from fedimint_gw.fedimint.encoding import U64_MAX, Reader, Writer, decode_whole, encode
from fedimint_gw.fedimint.errors import DecodeError
from fedimint_gw.fedimint.lnv2.keys import HASH_LEN, PUBKEY_LEN, check_pubkey, verify_schnorr


class ImageKind(Enum):
    """How a contract names its payment: by a SHA-256 hash or by a secp256k1 point."""

    HASH = 0
    POINT = 1


@dataclass(frozen=True)
class PaymentImage:
    """``Hash(sha256)`` (32 bytes) or ``Point(PublicKey)`` (33 bytes)."""

    kind: ImageKind
    value: bytes

    def __post_init__(self) -> None:
        if self.kind is ImageKind.HASH and len(self.value) != HASH_LEN:
            raise DecodeError("a payment hash is 32 bytes")
        if self.kind is ImageKind.POINT:
            check_pubkey(self.value, "payment image point")

    @classmethod
    def of_hash(cls, payment_hash: bytes) -> PaymentImage:
        return cls(ImageKind.HASH, payment_hash)

    def matches(self, preimage: bytes) -> bool:
        """Upstream ``verify_preimage``: sha256(preimage) == hash, or preimage's point == point."""
        if len(preimage) != 32:
            return False
        if self.kind is ImageKind.HASH:
            return hashlib.sha256(preimage).digest() == self.value
        try:
            return bytes(PrivateKey(preimage).public_key.format(compressed=True)) == self.value
        except ValueError:
            return False

    def write(self, w: Writer) -> None:
        w.variant(self.kind.value, self.value)

    @classmethod
    def read(cls, r: Reader) -> PaymentImage:
        return r.strict_enum(
            {
                0: lambda b: cls(ImageKind.HASH, b.fixed(HASH_LEN)),
                1: lambda b: cls(ImageKind.POINT, b.fixed(PUBKEY_LEN)),
            },
            "PaymentImage",
        )

    def to_json(self) -> dict[str, object]:
        return {"Hash" if self.kind is ImageKind.HASH else "Point": self.value.hex()}

    @classmethod
    def from_json(cls, value: object) -> PaymentImage:
        data = jf.obj(value, "payment_image")
        if len(data) != 1:
            raise DecodeError("payment_image must have exactly one of Hash, Point")
        if "Hash" in data:
            return cls(ImageKind.HASH, jf.hex_bytes(data["Hash"], "payment_image.Hash", HASH_LEN))
        if "Point" in data:
            return cls(ImageKind.POINT, jf.hex_bytes(data["Point"], "payment_image.Point", PUBKEY_LEN))
        raise DecodeError("payment_image must be Hash or Point")


@dataclass(frozen=True)
class ContractTerms:
    """The fields an incoming contract's commitment and an outgoing contract share, in order."""

    payment_image: PaymentImage
    amount: int
    expiration: int
    claim_pk: bytes
    refund_pk: bytes
    ephemeral_pk: bytes

    def __post_init__(self) -> None:
        for name, value in (("amount", self.amount), ("expiration", self.expiration)):
            if isinstance(value, bool) or not 0 <= value <= U64_MAX:
                raise DecodeError(f"{name} must be an integer in 0..2^64-1")
        check_pubkey(self.claim_pk, "claim_pk")
        check_pubkey(self.refund_pk, "refund_pk")
        check_pubkey(self.ephemeral_pk, "ephemeral_pk")

    def write(self, w: Writer) -> None:
        self.payment_image.write(w)
        w.u64(self.amount).u64(self.expiration)
        w.fixed(self.claim_pk, PUBKEY_LEN).fixed(self.refund_pk, PUBKEY_LEN).fixed(
            self.ephemeral_pk, PUBKEY_LEN
        )

    @classmethod
    def read(cls, r: Reader) -> ContractTerms:
        image = PaymentImage.read(r)
        amount, expiration = r.u64(), r.u64()
        return cls(image, amount, expiration, r.fixed(PUBKEY_LEN), r.fixed(PUBKEY_LEN), r.fixed(PUBKEY_LEN))

    def to_json(self) -> dict[str, object]:
        return {
            "payment_image": self.payment_image.to_json(),
            "amount": self.amount,
            "expiration": self.expiration,
            "claim_pk": self.claim_pk.hex(),
            "refund_pk": self.refund_pk.hex(),
            "ephemeral_pk": self.ephemeral_pk.hex(),
        }

    @classmethod
    def from_json(cls, value: object, what: str) -> ContractTerms:
        data = jf.obj(value, what)
        return cls(
            payment_image=PaymentImage.from_json(jf.field(data, "payment_image", what)),
            amount=jf.integer(jf.field(data, "amount", what), f"{what}.amount", U64_MAX),
            expiration=jf.integer(jf.field(data, "expiration", what), f"{what}.expiration", U64_MAX),
            claim_pk=jf.hex_bytes(jf.field(data, "claim_pk", what), f"{what}.claim_pk", PUBKEY_LEN),
            refund_pk=jf.hex_bytes(jf.field(data, "refund_pk", what), f"{what}.refund_pk", PUBKEY_LEN),
            ephemeral_pk=jf.hex_bytes(
                jf.field(data, "ephemeral_pk", what), f"{what}.ephemeral_pk", PUBKEY_LEN
            ),
        )

    def consensus_hash(self) -> bytes:
        return hashlib.sha256(encode(self.write)).digest()


def _key(data: Mapping[str, object], key: str, what: str) -> bytes:
    return jf.hex_bytes(jf.field(data, key, what), f"{what}.{key}", PUBKEY_LEN)


@dataclass(frozen=True)
class IncomingContract:
    """A receive: the gateway funds it; the guardians' decryption shares reveal the preimage."""

    commitment: ContractTerms
    ciphertext: tpe.CipherText

    @classmethod
    def create(
        cls,
        agg_pk: tpe.AggregatePublicKey,
        encryption_seed: bytes,
        preimage: bytes,
        commitment: ContractTerms,
    ) -> IncomingContract:
        """Encrypt ``preimage`` to the federation, bound to the commitment's consensus hash."""
        ct = tpe.encrypt_preimage(agg_pk, encryption_seed, preimage, commitment.consensus_hash())
        return cls(commitment, ct)

    def write(self, w: Writer) -> None:
        self.commitment.write(w)
        w.raw(self.ciphertext.encode())

    @classmethod
    def read(cls, r: Reader) -> IncomingContract:
        commitment = ContractTerms.read(r)
        try:
            ct = tpe.CipherText.decode(r.fixed(tpe.CIPHERTEXT_BYTES))
        except CryptoError as exc:
            raise DecodeError(f"invalid tpe ciphertext: {exc}") from None
        return cls(commitment, ct)

    def to_bytes(self) -> bytes:
        return encode(self.write)

    @classmethod
    def from_bytes(cls, data: bytes) -> IncomingContract:
        return decode_whole(data, cls.read)

    def contract_id(self) -> bytes:
        """``ContractId``: sha256 of the consensus encoding."""
        return hashlib.sha256(self.to_bytes()).digest()

    def commitment_hash(self) -> bytes:
        return self.commitment.consensus_hash()

    def verify(self) -> bool:
        """The ciphertext is well formed and bound to this commitment (guardians check this)."""
        return tpe.verify_ciphertext(self.ciphertext, self.commitment_hash())

    def verify_dk_share(self, pk: tpe.PublicKeyShare, share: tpe.DecryptionKeyShare) -> bool:
        """One guardian's share checks; a contract that fails :meth:`verify` is refused first."""
        return self.verify() and tpe.verify_dk_share(pk, share, self.ciphertext, self.commitment_hash())

    def verify_agg_dk(self, agg_pk: tpe.AggregatePublicKey, agg_dk: tpe.AggregateDecryptionKey) -> bool:
        return self.verify() and tpe.verify_agg_dk(agg_pk, agg_dk, self.ciphertext, self.commitment_hash())

    def decrypt(self, agg_dk: tpe.AggregateDecryptionKey) -> bytes | None:
        """The preimage if it matches the payment image, else None (the contract is refundable)."""
        preimage = tpe.decrypt_preimage(self.ciphertext, agg_dk)
        return preimage if self.commitment.payment_image.matches(preimage) else None

    def to_json(self) -> dict[str, object]:
        return {"commitment": self.commitment.to_json(), "ciphertext": self.ciphertext.to_json()}

    @classmethod
    def from_json(cls, value: object) -> IncomingContract:
        data = jf.obj(value, "incoming contract")
        commitment = ContractTerms.from_json(jf.field(data, "commitment", "incoming contract"), "commitment")
        try:
            ct = tpe.CipherText.from_json(jf.field(data, "ciphertext", "incoming contract"))
        except CryptoError as exc:
            raise DecodeError(f"invalid ciphertext: {exc}") from None
        return cls(commitment, ct)


@dataclass(frozen=True)
class OutgoingContract:
    """A send: the sender locks ``amount`` to ``claim_pk`` (the gateway) until ``expiration``."""

    terms: ContractTerms

    @property
    def payment_image(self) -> PaymentImage:
        return self.terms.payment_image

    @property
    def amount(self) -> int:
        return self.terms.amount

    @property
    def expiration(self) -> int:
        return self.terms.expiration

    @property
    def claim_pk(self) -> bytes:
        return self.terms.claim_pk

    @property
    def refund_pk(self) -> bytes:
        return self.terms.refund_pk

    def write(self, w: Writer) -> None:
        self.terms.write(w)

    @classmethod
    def read(cls, r: Reader) -> OutgoingContract:
        return cls(ContractTerms.read(r))

    def to_bytes(self) -> bytes:
        return encode(self.write)

    @classmethod
    def from_bytes(cls, data: bytes) -> OutgoingContract:
        return decode_whole(data, cls.read)

    def contract_id(self) -> bytes:
        return hashlib.sha256(self.to_bytes()).digest()

    def forfeit_message(self) -> bytes:
        """What the gateway signs (with the claim key) to let the sender cancel: the contract id."""
        return self.contract_id()

    def verify_forfeit_signature(self, signature: bytes) -> bool:
        return verify_schnorr(self.claim_pk, self.forfeit_message(), signature)

    def verify_invoice_auth(self, invoice_hash: bytes, signature: bytes) -> bool:
        """The sender (``refund_pk``) signed the consensus hash of the invoice it wants paid."""
        return verify_schnorr(self.refund_pk, invoice_hash, signature)

    def to_json(self) -> dict[str, object]:
        return self.terms.to_json()

    @classmethod
    def from_json(cls, value: object) -> OutgoingContract:
        return cls(ContractTerms.from_json(value, "outgoing contract"))
