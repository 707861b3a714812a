"""Threshold ElGamal encryption of a 32-byte preimage to a federation key.

The federation key is ``PK = sk*G`` with ``sk`` Shamir-shared (guardian ``i`` holds
``sk_i``, publishes ``PK_i = sk_i*G``).

* :func:`encrypt` picks ``r``, sets ``R = r*G`` and
  ``masked = preimage XOR H_mask(PK, R, r*PK, context)``, and attaches a Schnorr proof of
  knowledge of ``r`` bound to ``(PK, R, masked, context)``. The proof makes the ciphertext
  non-malleable: nobody can re-use someone else's ``R`` under a new context (for example
  in a contract they funded themselves) to get it decrypted, because they cannot prove
  knowledge of its ``r``. Guardians therefore refuse to decrypt a ciphertext whose proof
  does not verify (:func:`create_share`).
* Guardian ``i`` answers ``D_i = sk_i*R`` with a DLEQ proof that
  ``log_G(PK_i) == log_R(D_i)`` (:func:`create_share`).
* Anyone holding the public key shares verifies shares (:func:`verify_share`), interpolates
  ``threshold`` of them to ``sk*R = r*PK`` and unmasks (:func:`decrypt`).

``context`` is not stored in the ciphertext: it is whatever the ciphertext must stay bound
to (e.g. a contract's payment hash and amount) and each party supplies it independently.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from fedimint_gw.crypto import dleq
from fedimint_gw.crypto._codec import get_bytes, get_field, get_index, get_point, get_scalar, require_mapping
from fedimint_gw.crypto.errors import CryptoError, InvalidShareError
from fedimint_gw.crypto.point import (
    COMPRESSED_SIZE,
    Point,
    base_multiply,
    generator,
    linear_combination,
    multiply,
)
from fedimint_gw.crypto.scalar import (
    SCALAR_SIZE,
    N,
    bytes_from_hex,
    derive_nonce,
    hash_to_scalar,
    random_scalar,
    require_nonzero_scalar,
    require_scalar,
    scalar_from_bytes,
    scalar_to_bytes,
    scalar_to_hex,
    tagged_hash,
)
from fedimint_gw.crypto.shamir import PointShare, Share, combine_points, require_index, require_threshold

PREIMAGE_SIZE: Final[int] = 32
CIPHERTEXT_SIZE: Final[int] = COMPRESSED_SIZE + PREIMAGE_SIZE + 2 * SCALAR_SIZE
_MASK_TAG: Final[str] = "fedimint-gw/elgamal/mask/v1"
_POK_TAG: Final[str] = "fedimint-gw/elgamal/pok/v1"
_POK_NONCE_TAG: Final[str] = "fedimint-gw/elgamal/pok-nonce/v1"
_SHARE_TAG: Final[str] = "fedimint-gw/elgamal/decryption-share/v1"


@dataclass(frozen=True)
class Ciphertext:
    """An encrypted preimage: ``R``, the masked preimage, and a proof of knowledge of ``r``.

    JSON form: ``{"R": "<66 hex>", "masked": "<64 hex>", "e": "<64 hex>", "s": "<64 hex>"}``;
    binary form (:meth:`to_bytes`): ``R || masked || e || s`` (129 bytes).
    """

    ephemeral: Point
    masked: bytes
    challenge: int
    response: int

    def __post_init__(self) -> None:
        if not isinstance(self.masked, bytes) or len(self.masked) != PREIMAGE_SIZE:
            raise CryptoError(f"masked preimage must be {PREIMAGE_SIZE} bytes")
        require_scalar(self.challenge, "ciphertext challenge")
        require_scalar(self.response, "ciphertext response")

    def to_bytes(self) -> bytes:
        """Return the 129-byte binary encoding."""
        return (
            self.ephemeral.to_bytes()
            + self.masked
            + scalar_to_bytes(self.challenge)
            + scalar_to_bytes(self.response)
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Ciphertext:
        """Parse the encoding produced by :meth:`to_bytes`."""
        if len(data) != CIPHERTEXT_SIZE:
            raise CryptoError(f"ciphertext must be {CIPHERTEXT_SIZE} bytes, got {len(data)}")
        masked_end = COMPRESSED_SIZE + PREIMAGE_SIZE
        return cls(
            ephemeral=Point.from_bytes(data[:COMPRESSED_SIZE]),
            masked=bytes(data[COMPRESSED_SIZE:masked_end]),
            challenge=scalar_from_bytes(data[masked_end : masked_end + SCALAR_SIZE]),
            response=scalar_from_bytes(data[masked_end + SCALAR_SIZE :]),
        )

    def to_hex(self) -> str:
        """Return :meth:`to_bytes` as lowercase hex."""
        return self.to_bytes().hex()

    @classmethod
    def from_hex(cls, text: str) -> Ciphertext:
        """Parse the form produced by :meth:`to_hex`."""
        return cls.from_bytes(bytes_from_hex(text, CIPHERTEXT_SIZE, "ciphertext"))

    def to_dict(self) -> dict[str, str]:
        """Return the JSON-ready form."""
        return {
            "R": self.ephemeral.to_hex(),
            "masked": self.masked.hex(),
            "e": scalar_to_hex(self.challenge),
            "s": scalar_to_hex(self.response),
        }

    @classmethod
    def from_dict(cls, data: object) -> Ciphertext:
        """Parse the form produced by :meth:`to_dict`; raise :class:`CryptoError` if malformed."""
        fields = require_mapping(data, "ciphertext")
        return cls(
            ephemeral=get_point(fields, "R", "ciphertext"),
            masked=get_bytes(fields, "masked", PREIMAGE_SIZE, "ciphertext"),
            challenge=get_scalar(fields, "e", "ciphertext"),
            response=get_scalar(fields, "s", "ciphertext"),
        )


@dataclass(frozen=True)
class DecryptionShare:
    """Guardian ``index``'s decryption share ``D_i = sk_i*R`` with its DLEQ proof.

    JSON form: ``{"index": 1, "D": "<66 hex>", "dleq": {"e": ..., "s": ...}}``.
    """

    index: int
    point: Point
    proof: dleq.Dleq

    def __post_init__(self) -> None:
        require_index(self.index)

    def to_dict(self) -> dict[str, object]:
        """Return the JSON-ready form."""
        return {"index": self.index, "D": self.point.to_hex(), "dleq": self.proof.to_dict()}

    @classmethod
    def from_dict(cls, data: object) -> DecryptionShare:
        """Parse the form produced by :meth:`to_dict`; raise :class:`CryptoError` if malformed."""
        what = "decryption share"
        fields = require_mapping(data, what)
        return cls(
            index=get_index(fields, "index", what),
            point=get_point(fields, "D", what),
            proof=dleq.Dleq.from_dict(get_field(fields, "dleq", what)),
        )


def _mask(public_key: Point, ephemeral: Point, shared: Point, context: bytes) -> bytes:
    return tagged_hash(_MASK_TAG, public_key.to_bytes(), ephemeral.to_bytes(), shared.to_bytes(), context)


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


def _pok_challenge(
    public_key: Point, ephemeral: Point, commitment: Point, masked: bytes, context: bytes
) -> int:
    return hash_to_scalar(
        _POK_TAG, public_key.to_bytes(), ephemeral.to_bytes(), commitment.to_bytes(), masked, context
    )


def encrypt(
    public_key: Point, preimage: bytes, context: bytes, ephemeral_secret: int | None = None
) -> Ciphertext:
    """Encrypt a 32-byte ``preimage`` to the federation key ``public_key``, bound to ``context``.

    ``ephemeral_secret`` (``r``) is random unless given; giving it is for tests only.
    """
    if not isinstance(preimage, bytes) or len(preimage) != PREIMAGE_SIZE:
        raise CryptoError(f"preimage must be {PREIMAGE_SIZE} bytes")
    r = random_scalar() if ephemeral_secret is None else ephemeral_secret
    require_nonzero_scalar(r, "ephemeral secret")
    ephemeral = base_multiply(r)
    masked = _xor(preimage, _mask(public_key, ephemeral, multiply(public_key, r), context))
    nonce = derive_nonce(_POK_NONCE_TAG, r, public_key.to_bytes(), ephemeral.to_bytes(), masked, context)
    challenge = _pok_challenge(public_key, ephemeral, base_multiply(nonce), masked, context)
    return Ciphertext(
        ephemeral=ephemeral, masked=masked, challenge=challenge, response=(nonce + challenge * r) % N
    )


def verify_ciphertext(public_key: Point, ciphertext: Ciphertext, context: bytes) -> bool:
    """Return whether ``ciphertext`` was made for ``public_key`` and ``context`` by someone
    who knows its ephemeral secret."""
    try:
        commitment = linear_combination(
            [(ciphertext.response, generator()), ((-ciphertext.challenge) % N, ciphertext.ephemeral)]
        )
    except CryptoError:
        return False
    expected = _pok_challenge(public_key, ciphertext.ephemeral, commitment, ciphertext.masked, context)
    return expected == ciphertext.challenge


def _share_context(index: int, ciphertext: Ciphertext) -> bytes:
    return tagged_hash(_SHARE_TAG, index.to_bytes(32, "big"), ciphertext.to_bytes())


def create_share(
    key_share: Share, public_key: Point, ciphertext: Ciphertext, context: bytes
) -> DecryptionShare:
    """Guardian side: return ``D_i = sk_i*R`` with a DLEQ proof against ``PK_i = sk_i*G``.

    Raises :class:`CryptoError` if the ciphertext's proof does not verify for
    ``public_key`` and ``context``: decrypting such a ciphertext could leak someone else's
    preimage.
    """
    if not verify_ciphertext(public_key, ciphertext, context):
        raise CryptoError("ciphertext is not well formed for this key and context; refusing to decrypt")
    base = ciphertext.ephemeral
    return DecryptionShare(
        index=key_share.index,
        point=multiply(base, key_share.value),
        proof=dleq.prove_equal_log(key_share.value, base, _share_context(key_share.index, ciphertext)),
    )


def verify_share(public_key_share: Point, ciphertext: Ciphertext, share: DecryptionShare) -> bool:
    """Return whether ``share`` is ``sk_i*R`` for the ``sk_i`` behind ``public_key_share``."""
    return dleq.verify_equal_log(
        share.proof,
        public_key_share,
        ciphertext.ephemeral,
        share.point,
        _share_context(share.index, ciphertext),
    )


def combine_shares(
    ciphertext: Ciphertext,
    shares: Sequence[DecryptionShare],
    public_key_shares: Mapping[int, Point],
    threshold: int,
) -> Point:
    """Verify every given share and interpolate ``threshold`` of them into ``sk*R``.

    Raises :class:`InvalidShareError` (with ``.index``) for the first share whose index is
    unknown, repeated, or whose proof fails, and :class:`CryptoError` if fewer than
    ``threshold`` shares are given. To skip bad guardians instead, filter with
    :func:`verify_share` first.
    """
    for share in shares:
        public_key_share = public_key_shares.get(share.index)
        if public_key_share is None:
            raise InvalidShareError(share.index, "no public key share for this index")
        if not verify_share(public_key_share, ciphertext, share):
            raise InvalidShareError(share.index, "DLEQ proof does not verify")
    require_threshold([share.index for share in shares], threshold)
    chosen = sorted(shares, key=lambda share: share.index)[:threshold]
    return combine_points([PointShare(index=share.index, point=share.point) for share in chosen])


def decrypt(
    public_key: Point,
    ciphertext: Ciphertext,
    context: bytes,
    shares: Sequence[DecryptionShare],
    public_key_shares: Mapping[int, Point],
    threshold: int,
) -> bytes:
    """Check the ciphertext, verify and combine decryption shares, and return the preimage.

    Raises :class:`CryptoError` for a ciphertext that does not verify, and the errors of
    :func:`combine_shares` for bad or too few shares. Callers should still compare the
    result with the payment hash they expect.
    """
    if not verify_ciphertext(public_key, ciphertext, context):
        raise CryptoError("ciphertext is not well formed for this key and context")
    shared = combine_shares(ciphertext, shares, public_key_shares, threshold)
    return _xor(ciphertext.masked, _mask(public_key, ciphertext.ephemeral, shared, context))


def decrypt_with_secret_key(secret_key: int, ciphertext: Ciphertext, context: bytes) -> bytes:
    """Decrypt with the whole secret key ``sk`` (single-key setups and tests)."""
    public_key = base_multiply(secret_key)
    if not verify_ciphertext(public_key, ciphertext, context):
        raise CryptoError("ciphertext is not well formed for this key and context")
    shared = multiply(ciphertext.ephemeral, secret_key)
    return _xor(ciphertext.masked, _mask(public_key, ciphertext.ephemeral, shared, context))
