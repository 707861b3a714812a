"""Discrete-log-equality (Chaum-Pedersen) proofs.

Two flavours share the :class:`Dleq` ``(e, s)`` container:

* **NUT-12** (:func:`prove`, :func:`verify`, :func:`verify_unblinded`): byte-compatible with
  Cashu. It proves ``log_G(A) == log_B_(C_)`` for a mint key ``A`` and blind signature
  ``C_``. Its challenge ``e = hash_e(R1, R2, A, C_)`` does not cover ``B_``; that is sound
  only because the verifier (the wallet) chose ``B_`` itself.
* **Generic** (:func:`prove_equal_log`, :func:`verify_equal_log`): proves
  ``log_G(P) == log_H(Q)`` for any base ``H``. The challenge is a tagged hash over the
  whole statement ``(H, P, Q)``, both commitments and a caller-supplied ``context``, so a
  proof cannot be replayed for another statement or context. Used for threshold decryption
  shares.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from fedimint_gw.crypto._codec import get_scalar, require_mapping
from fedimint_gw.crypto.bdhke import hash_to_curve
from fedimint_gw.crypto.errors import CryptoError
from fedimint_gw.crypto.point import Point, base_multiply, generator, linear_combination, multiply
from fedimint_gw.crypto.scalar import (
    N,
    derive_nonce,
    hash_to_scalar,
    require_nonzero_scalar,
    require_scalar,
    scalar_from_bytes,
    scalar_to_bytes,
    scalar_to_hex,
    sha256,
)

NUT12_NONCE_DOMAIN: Final[bytes] = b"Cashu_DLEQ_R_v1"
_CHALLENGE_TAG: Final[str] = "fedimint-gw/dleq/challenge/v1"
_NONCE_TAG: Final[str] = "fedimint-gw/dleq/nonce/v1"


@dataclass(frozen=True)
class Dleq:
    """A DLEQ proof: challenge ``e`` and response ``s``, both scalars in ``[0, N)``.

    JSON form (NUT-12): ``{"e": "<64 hex>", "s": "<64 hex>"}``.
    """

    e: int
    s: int

    def __post_init__(self) -> None:
        require_scalar(self.e, "dleq.e")
        require_scalar(self.s, "dleq.s")

    def to_dict(self) -> dict[str, str]:
        """Return the JSON-ready form with hex-encoded scalars."""
        return {"e": scalar_to_hex(self.e), "s": scalar_to_hex(self.s)}

    @classmethod
    def from_dict(cls, data: object) -> Dleq:
        """Parse the form produced by :meth:`to_dict`; raise :class:`CryptoError` if malformed."""
        fields: Mapping[str, object] = require_mapping(data, "dleq")
        return cls(e=get_scalar(fields, "e", "dleq"), s=get_scalar(fields, "s", "dleq"))


def hash_e(*points: Point) -> bytes:
    """NUT-12 challenge hash: SHA-256 of the concatenated uncompressed hex of ``points``."""
    text = "".join(point.uncompressed().hex() for point in points)
    return sha256(text.encode("ascii"))


def nut12_nonce(private_key: int, public_key: Point, blinded: Point, blind_signature: Point) -> int:
    """Derive the deterministic NUT-12 nonce ``r`` for proving a blind signature.

    ``r = HMAC-SHA256(key, "Cashu_DLEQ_R_v1" || A || B_ || C_ || ctr)`` with uncompressed
    points and a counter byte retried until ``0 < r < N``. The HMAC key is
    ``sha256(a)`` (32-byte big-endian ``a``): that is what reproduces the published NUT-12
    vector, although the prose of NUT-12 says ``key=a``.
    """
    key = sha256(scalar_to_bytes(require_nonzero_scalar(private_key, "private key")))
    message = (
        NUT12_NONCE_DOMAIN
        + public_key.uncompressed()
        + blinded.uncompressed()
        + blind_signature.uncompressed()
    )
    for counter in range(256):
        digest = hmac.new(key, message + bytes([counter]), hashlib.sha256).digest()
        candidate = int.from_bytes(digest, "big")
        if 0 < candidate < N:
            return candidate
    raise CryptoError("NUT-12 nonce derivation failed after 256 attempts")


def _challenge_scalar(digest: bytes) -> int:
    try:
        return scalar_from_bytes(digest)
    except CryptoError as exc:  # probability ~2**-128
        raise CryptoError("challenge hash is not a valid scalar; retry with another nonce") from exc


def prove(private_key: int, blinded: Point, nonce: int | None = None) -> Dleq:
    """Prove (NUT-12) that ``C_ = k*B_`` used the same ``k`` as ``K = k*G``.

    ``nonce`` defaults to the deterministic :func:`nut12_nonce`; pass one only for test
    vectors. Never reuse an explicit nonce for two different ``B_``: that reveals ``k``.
    """
    k = require_nonzero_scalar(private_key, "private key")
    public_key = base_multiply(k)
    blind_signature = multiply(blinded, k)
    r = nut12_nonce(k, public_key, blinded, blind_signature) if nonce is None else nonce
    require_nonzero_scalar(r, "nonce")
    e = _challenge_scalar(hash_e(base_multiply(r), multiply(blinded, r), public_key, blind_signature))
    return Dleq(e=e, s=(r + e * k) % N)


def verify(proof: Dleq, public_key: Point, blinded: Point, blind_signature: Point) -> bool:
    """Check a NUT-12 proof that ``log_G(public_key) == log_blinded(blind_signature)``."""
    minus_e = (-proof.e) % N
    try:
        r1 = linear_combination([(proof.s, generator()), (minus_e, public_key)])
        r2 = linear_combination([(proof.s, blinded), (minus_e, blind_signature)])
    except CryptoError:
        return False
    expected = hash_e(r1, r2, public_key, blind_signature)
    return hmac.compare_digest(expected, scalar_to_bytes(proof.e))


def verify_unblinded(
    proof: Dleq, public_key: Point, secret: bytes, signature: Point, blinding_factor: int
) -> bool:
    """Check a NUT-12 proof carried in an unblinded ``Proof`` (the "Carol" check).

    Rebuilds ``B_ = hash_to_curve(secret) + r*G`` and ``C_ = C + r*K`` and then runs
    :func:`verify`. ``secret`` is the byte string the note's ``Y`` was hashed from.
    """
    try:
        require_nonzero_scalar(blinding_factor, "blinding factor")
        blinded = hash_to_curve(secret) + base_multiply(blinding_factor)
        blind_signature = signature + multiply(public_key, blinding_factor)
    except CryptoError:
        return False
    return verify(proof, public_key, blinded, blind_signature)


def _statement_challenge(
    base: Point, public: Point, result: Point, r1: Point, r2: Point, context: bytes
) -> int:
    return hash_to_scalar(
        _CHALLENGE_TAG,
        base.to_bytes(),
        public.to_bytes(),
        result.to_bytes(),
        r1.to_bytes(),
        r2.to_bytes(),
        context,
    )


def prove_equal_log(secret: int, base: Point, context: bytes = b"", nonce: int | None = None) -> Dleq:
    """Prove ``log_G(secret*G) == log_base(secret*base)``, bound to ``context``.

    The nonce defaults to a deterministic derivation from ``secret``, the statement and
    ``context``. An explicit ``nonce`` is for tests only and must never be reused.
    """
    x = require_nonzero_scalar(secret, "secret")
    public = base_multiply(x)
    result = multiply(base, x)
    if nonce is None:
        r = derive_nonce(_NONCE_TAG, x, base.to_bytes(), public.to_bytes(), result.to_bytes(), context)
    else:
        r = require_nonzero_scalar(nonce, "nonce")
    e = _statement_challenge(base, public, result, base_multiply(r), multiply(base, r), context)
    return Dleq(e=e, s=(r + e * x) % N)


def verify_equal_log(proof: Dleq, public: Point, base: Point, result: Point, context: bytes = b"") -> bool:
    """Check a :func:`prove_equal_log` proof that ``log_G(public) == log_base(result)``."""
    minus_e = (-proof.e) % N
    try:
        r1 = linear_combination([(proof.s, generator()), (minus_e, public)])
        r2 = linear_combination([(proof.s, base), (minus_e, result)])
    except CryptoError:
        return False
    return _statement_challenge(base, public, result, r1, r2, context) == proof.e
