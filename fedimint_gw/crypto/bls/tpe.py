"""Fedimint's threshold point encryption (``crypto/tpe``), used by LNv2 incoming contracts.

Keys live on G1: guardian ``i`` holds ``sk_i`` and publishes ``pk_i = G1 * sk_i``; the aggregate
key is ``G1 * sk``. A 32-byte preimage is encrypted to the aggregate key with an ephemeral key
``e = Scalar::random(ChaChaRng(encryption_seed))``:

- ``pk = G1 * e`` (ephemeral public key) and ``agg_dk = agg_pk * e`` (the decryption key);
- ``encrypted_preimage = preimage XOR SHA-256(compressed agg_dk)``;
- ``H = hash_to_message(encrypted_preimage, pk, commitment)`` on G2 and ``signature = H * e``,
  which binds the ciphertext to the contract's commitment (``e(G1, signature) = e(pk, H)``).

Guardians answer decryption key shares ``pk * sk_i`` (checked with ``e(dks_i, H) = e(pk_i,
signature)``); a threshold of them interpolates to ``agg_dk`` (checked with ``e(agg_dk, H) =
e(agg_pk, signature)``), which decrypts.

**Index convention**: maps of shares are keyed by the 0-based ``PeerId``; peer ``p`` is at
``x = p + 1`` (the current crate adds 1 inside; an older one took keys that callers had already
incremented: same x). A single share aggregates to itself (newer Fedimint; the vectors' commit
panicked there).

Encodings: ``CipherText`` = encrypted preimage (32) || pk (48) || signature (96), 176 bytes;
keys and shares are 48-byte compressed G1 points, secret shares 32-byte little-endian scalars.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from py_arkworks_bls12381 import G2Point

from fedimint_gw.crypto.bls.chacha import ChaChaRng, scalar_from_seed
from fedimint_gw.crypto.bls.curve import g2_random
from fedimint_gw.crypto.bls.dealer import secret_shares
from fedimint_gw.crypto.bls.errors import InvalidCiphertextError
from fedimint_gw.crypto.bls.group import (
    G1_BYTES,
    G2_BYTES,
    G1Element,
    G2Element,
    ScalarElement,
    g1_generator,
    g1_interpolate,
    g1_mul,
    g2_mul,
    pairings_equal,
    peer_x,
)
from fedimint_gw.crypto.errors import CryptoError

MESSAGE_TAG: Final[bytes] = b"FEDIMINT_TPE_BLS12_381_MESSAGE"
"""Prefix of the SHA-256 input that seeds :func:`hash_to_message`."""

PREIMAGE_BYTES: Final[int] = 32
COMMITMENT_BYTES: Final[int] = 32
CIPHERTEXT_BYTES: Final[int] = PREIMAGE_BYTES + G1_BYTES + G2_BYTES


@dataclass(frozen=True, repr=False)
class SecretKeyShare(ScalarElement):
    """A guardian's secret decryption share."""


@dataclass(frozen=True)
class PublicKeyShare(G1Element):
    """A guardian's public share ``G1 * sk_i``."""


@dataclass(frozen=True)
class AggregatePublicKey(G1Element):
    """The federation's LNv2 encryption key ``G1 * sk``."""


@dataclass(frozen=True)
class EphemeralPublicKey(G1Element):
    """``G1 * e`` for the encryptor's ephemeral secret ``e``."""


@dataclass(frozen=True)
class EphemeralSignature(G2Element):
    """``H * e``: binds the ciphertext to its commitment."""


@dataclass(frozen=True)
class DecryptionKeyShare(G1Element):
    """A guardian's answer ``pk * sk_i`` for one ciphertext."""


@dataclass(frozen=True)
class AggregateDecryptionKey(G1Element):
    """``agg_pk * e``: the key that decrypts one ciphertext."""


@dataclass(frozen=True)
class CipherText:
    """An encrypted 32-byte preimage with its ephemeral key and signature."""

    encrypted_preimage: bytes
    pk: EphemeralPublicKey
    signature: EphemeralSignature

    def __post_init__(self) -> None:
        if len(self.encrypted_preimage) != PREIMAGE_BYTES:
            raise CryptoError(f"an encrypted preimage is {PREIMAGE_BYTES} bytes")

    def encode(self) -> bytes:
        """Return the 176-byte consensus encoding (no prefixes)."""
        return self.encrypted_preimage + self.pk.encode() + self.signature.encode()

    @classmethod
    def decode(cls, data: bytes) -> CipherText:
        """Parse the 176-byte consensus encoding (points checked)."""
        if len(data) != CIPHERTEXT_BYTES:
            raise CryptoError(f"a tpe ciphertext is {CIPHERTEXT_BYTES} bytes, got {len(data)}")
        return cls(
            encrypted_preimage=bytes(data[:PREIMAGE_BYTES]),
            pk=EphemeralPublicKey.decode(data[PREIMAGE_BYTES : PREIMAGE_BYTES + G1_BYTES]),
            signature=EphemeralSignature.decode(data[PREIMAGE_BYTES + G1_BYTES :]),
        )

    def to_json(self) -> dict[str, object]:
        """The serde JSON form: the preimage as 32 integers, the points as hex strings."""
        return {
            "encrypted_preimage": list(self.encrypted_preimage),
            "pk": self.pk.encode().hex(),
            "signature": self.signature.encode().hex(),
        }

    @classmethod
    def from_json(cls, data: object) -> CipherText:
        """Parse the serde JSON form; raise :class:`CryptoError` on anything malformed."""
        if not isinstance(data, Mapping):
            raise CryptoError("a tpe ciphertext must be a JSON object")
        raw = data.get("encrypted_preimage")
        if not isinstance(raw, list) or not all(
            isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in raw
        ):
            raise CryptoError("encrypted_preimage must be an array of bytes")
        return cls(
            encrypted_preimage=bytes(raw),
            pk=EphemeralPublicKey.decode(_hex_field(data, "pk")),
            signature=EphemeralSignature.decode(_hex_field(data, "signature")),
        )


@dataclass(frozen=True)
class DealerKeys:
    """Keys made by a trusted dealer; tuples are indexed by 0-based peer id."""

    aggregate_public_key: AggregatePublicKey
    public_key_shares: tuple[PublicKeyShare, ...]
    secret_key_shares: tuple[SecretKeyShare, ...]


def dealer_keys(coefficients: Sequence[int], peers: int) -> DealerKeys:
    """Deal keys from a secret polynomial; peer ``p`` gets its value at ``x = p + 1``."""
    shares = [SecretKeyShare(s) for s in secret_shares(list(coefficients), peers)]
    return DealerKeys(
        aggregate_public_key=AggregatePublicKey(g1_mul(g1_generator(), coefficients[0])),
        public_key_shares=tuple(derive_public_key_share(s) for s in shares),
        secret_key_shares=tuple(shares),
    )


def derive_public_key_share(sk: SecretKeyShare) -> PublicKeyShare:
    """Return ``G1 * sk``."""
    return PublicKeyShare(g1_mul(g1_generator(), sk.scalar))


def hash_to_message(encrypted_preimage: bytes, pk: EphemeralPublicKey, commitment: bytes) -> G2Point:
    """``H``: G2-random seeded with SHA-256(tag || encrypted preimage || pk (48) || commitment)."""
    _check_len(encrypted_preimage, PREIMAGE_BYTES, "encrypted preimage")
    _check_len(commitment, COMMITMENT_BYTES, "commitment")
    seed = hashlib.sha256(MESSAGE_TAG + encrypted_preimage + pk.encode() + commitment).digest()
    return g2_random(ChaChaRng(seed))


def legacy_hash_to_message(encrypted_preimage: bytes, pk: EphemeralPublicKey, commitment: bytes) -> G2Point:
    """``H`` of an older tpe: the seed is the consensus hash of the tuple, so the tag is prefixed
    with its length byte 0x1e. Ciphertexts made that way fail the current :func:`verify_ciphertext`.
    """
    _check_len(encrypted_preimage, PREIMAGE_BYTES, "encrypted preimage")
    _check_len(commitment, COMMITMENT_BYTES, "commitment")
    data = bytes([len(MESSAGE_TAG)]) + MESSAGE_TAG + encrypted_preimage + pk.encode() + commitment
    return g2_random(ChaChaRng(hashlib.sha256(data).digest()))


def derive_agg_dk(agg_pk: AggregatePublicKey, encryption_seed: bytes) -> AggregateDecryptionKey:
    """The decryption key the encryptor knows: ``agg_pk * Scalar::random(ChaChaRng(seed))``."""
    _check_len(encryption_seed, 32, "encryption seed")
    return AggregateDecryptionKey(g1_mul(agg_pk.point, scalar_from_seed(encryption_seed)))


def encrypt_preimage(
    agg_pk: AggregatePublicKey, encryption_seed: bytes, preimage: bytes, commitment: bytes
) -> CipherText:
    """Encrypt a 32-byte preimage to ``agg_pk``, bound to a 32-byte ``commitment``."""
    _check_len(encryption_seed, 32, "encryption seed")
    _check_len(preimage, PREIMAGE_BYTES, "preimage")
    ephemeral = scalar_from_seed(encryption_seed)
    agg_dk = AggregateDecryptionKey(g1_mul(agg_pk.point, ephemeral))
    encrypted = _xor(preimage, _pad(agg_dk))
    pk = EphemeralPublicKey(g1_mul(g1_generator(), ephemeral))
    signature = EphemeralSignature(g2_mul(hash_to_message(encrypted, pk, commitment), ephemeral))
    return CipherText(encrypted_preimage=encrypted, pk=pk, signature=signature)


def verify_ciphertext(ct: CipherText, commitment: bytes) -> bool:
    """Check ``e(G1, signature) == e(pk, H)``: well formed and bound to ``commitment``."""
    h = hash_to_message(ct.encrypted_preimage, ct.pk, commitment)
    return pairings_equal(g1_generator(), ct.signature.point, ct.pk.point, h)


def create_dk_share(sk: SecretKeyShare, ct: CipherText) -> DecryptionKeyShare:
    """A guardian's decryption key share ``pk * sk_i`` (guardians check the ciphertext first)."""
    return DecryptionKeyShare(g1_mul(ct.pk.point, sk.scalar))


def verify_dk_share(pk: PublicKeyShare, dks: DecryptionKeyShare, ct: CipherText, commitment: bytes) -> bool:
    """Check ``e(dks_i, H) == e(pk_i, signature)``.

    Raises :class:`InvalidCiphertextError` if the ciphertext itself does not verify (Fedimint
    panics there); check it once with :func:`verify_ciphertext` before asking guardians.
    """
    h = _checked_message(ct, commitment)
    return pairings_equal(dks.point, h, pk.point, ct.signature.point)


def aggregate_dk_shares(shares: Mapping[int, DecryptionKeyShare]) -> AggregateDecryptionKey:
    """Interpolate shares keyed by 0-based peer id (x = peer + 1) at 0; one share is returned as is.

    Verify every share with :func:`verify_dk_share` first and pass at least the threshold.
    """
    return AggregateDecryptionKey(g1_interpolate([(peer_x(p), s.point) for p, s in shares.items()]))


def verify_agg_dk(
    agg_pk: AggregatePublicKey, agg_dk: AggregateDecryptionKey, ct: CipherText, commitment: bytes
) -> bool:
    """Check ``e(agg_dk, H) == e(agg_pk, signature)``; raises like :func:`verify_dk_share`."""
    h = _checked_message(ct, commitment)
    return pairings_equal(agg_dk.point, h, agg_pk.point, ct.signature.point)


def decrypt_preimage(ct: CipherText, agg_dk: AggregateDecryptionKey) -> bytes:
    """``encrypted_preimage XOR SHA-256(compressed agg_dk)``.

    A wrong key gives garbage, not an error: check :func:`verify_agg_dk` (and the payment hash).
    """
    return _xor(ct.encrypted_preimage, _pad(agg_dk))


def _checked_message(ct: CipherText, commitment: bytes) -> G2Point:
    h = hash_to_message(ct.encrypted_preimage, ct.pk, commitment)
    if not pairings_equal(g1_generator(), ct.signature.point, ct.pk.point, h):
        raise InvalidCiphertextError("tpe ciphertext does not verify against its commitment")
    return h


def _pad(agg_dk: AggregateDecryptionKey) -> bytes:
    return hashlib.sha256(agg_dk.encode()).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _check_len(data: bytes, size: int, what: str) -> None:
    if len(data) != size:
        raise CryptoError(f"{what} must be {size} bytes, got {len(data)}")


def _hex_field(data: Mapping[object, object], key: str) -> bytes:
    value = data.get(key)
    if not isinstance(value, str):
        raise CryptoError(f"{key} must be a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError as exc:
        raise CryptoError(f"{key} is not valid hex") from exc
