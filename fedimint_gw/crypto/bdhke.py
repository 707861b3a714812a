"""Blind Diffie-Hellman key exchange (BDHKE) as specified by Cashu NUT-00.

The user maps a secret ``x`` to ``Y = hash_to_curve(x)``, blinds it as ``B_ = Y + r*G`` and
sends ``B_`` to the mint. The mint (holding ``k`` with ``K = k*G``) answers ``C_ = k*B_``.
The user unblinds ``C = C_ - r*K = k*Y``. Whoever knows ``k`` can later check ``C == k*Y``.
In a federation ``k`` is Shamir-shared; see :mod:`fedimint_gw.crypto.threshold_bdhke`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from fedimint_gw.crypto.errors import CryptoError
from fedimint_gw.crypto.point import Point, base_multiply, multiply
from fedimint_gw.crypto.scalar import random_scalar, require_nonzero_scalar, sha256

DOMAIN_SEPARATOR: Final[bytes] = b"Secp256k1_HashToCurve_Cashu_"
"""NUT-00 domain separator for :func:`hash_to_curve`."""

_MAX_COUNTER: Final[int] = 2**16


def hash_to_curve(message: bytes) -> Point:
    """Map ``message`` to a secp256k1 point with the NUT-00 try-and-increment method.

    ``msg_hash = sha256(DOMAIN_SEPARATOR || message)``; for a 4-byte little-endian counter
    from 0, the first ``0x02 || sha256(msg_hash || counter)`` that is a valid point wins.
    Raises :class:`CryptoError` in the (astronomically unlikely) case that no counter below
    2**16 gives a point.
    """
    msg_hash = sha256(DOMAIN_SEPARATOR, message)
    for counter in range(_MAX_COUNTER):
        candidate = sha256(msg_hash, counter.to_bytes(4, "little"))
        try:
            return Point(b"\x02" + candidate)
        except CryptoError:
            continue
    raise CryptoError("hash_to_curve found no valid point within 2**16 iterations")


@dataclass(frozen=True)
class Blinding:
    """The result of :func:`blind`: the blinded message ``B_`` and the factor ``r``.

    ``blinding_factor`` is secret (it links ``B_`` to the final note) and is kept out of
    ``repr``.
    """

    blinded: Point
    blinding_factor: int = field(repr=False)


def blind(secret: bytes, blinding_factor: int | None = None) -> Blinding:
    """Blind ``secret``: return ``B_ = hash_to_curve(secret) + r*G`` together with ``r``.

    ``r`` is drawn at random unless given (tests and deterministic wallets pass it).
    """
    r = random_scalar() if blinding_factor is None else blinding_factor
    require_nonzero_scalar(r, "blinding factor")
    return Blinding(blinded=hash_to_curve(secret) + base_multiply(r), blinding_factor=r)


def sign(private_key: int, blinded: Point) -> Point:
    """Mint side: return the blind signature ``C_ = k * B_``.

    With a Shamir share ``k_i`` in place of ``k`` this produces a signature share.
    """
    require_nonzero_scalar(private_key, "private key")
    return multiply(blinded, private_key)


def unblind(blind_signature: Point, blinding_factor: int, public_key: Point) -> Point:
    """User side: return ``C = C_ - r*K``, the unblinded signature on the secret."""
    require_nonzero_scalar(blinding_factor, "blinding factor")
    return blind_signature - multiply(public_key, blinding_factor)


def verify(private_key: int, secret: bytes, signature: Point) -> bool:
    """Mint side: return whether ``signature == k * hash_to_curve(secret)``."""
    require_nonzero_scalar(private_key, "private key")
    return multiply(hash_to_curve(secret), private_key) == signature
