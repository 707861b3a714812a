"""Scalars modulo the secp256k1 group order, and the hash helpers built on SHA-256.

Scalars are plain ``int`` values in ``[0, N)``. Functions that need a non-zero scalar say so
and raise :class:`CryptoError` when given zero. Python integers are not constant-time, so
these helpers are meant for a development federation and for verification, not for
hardened signing hardware.
"""

from __future__ import annotations

import hashlib
import secrets
from typing import Final

from fedimint_gw.crypto.errors import CryptoError

N: Final[int] = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
"""The order of the secp256k1 group (the number of points, and the scalar field size)."""

SCALAR_SIZE: Final[int] = 32
"""Length in bytes of a serialised scalar (big-endian)."""


def random_scalar() -> int:
    """Return a uniformly random scalar in ``[1, N)`` drawn from the OS CSPRNG."""
    return secrets.randbelow(N - 1) + 1


def require_scalar(value: int, name: str = "scalar") -> int:
    """Return ``value`` if it is an int in ``[0, N)``; raise :class:`CryptoError` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise CryptoError(f"{name} must be an int, got {type(value).__name__}")
    if not 0 <= value < N:
        raise CryptoError(f"{name} is out of range [0, N)")
    return value


def require_nonzero_scalar(value: int, name: str = "scalar") -> int:
    """Return ``value`` if it is an int in ``[1, N)``; raise :class:`CryptoError` otherwise."""
    require_scalar(value, name)
    if value == 0:
        raise CryptoError(f"{name} must not be zero")
    return value


def scalar_add(a: int, b: int) -> int:
    """Return ``(a + b) mod N``."""
    return (a + b) % N


def scalar_sub(a: int, b: int) -> int:
    """Return ``(a - b) mod N``."""
    return (a - b) % N


def scalar_mul(a: int, b: int) -> int:
    """Return ``(a * b) mod N``."""
    return (a * b) % N


def scalar_neg(a: int) -> int:
    """Return ``-a mod N``."""
    return (-a) % N


def scalar_inv(a: int) -> int:
    """Return the inverse of ``a`` modulo N; raise :class:`CryptoError` if ``a = 0 mod N``."""
    if a % N == 0:
        raise CryptoError("zero has no modular inverse")
    return pow(a, -1, N)


def scalar_to_bytes(value: int) -> bytes:
    """Serialise a scalar in ``[0, N)`` as 32 big-endian bytes."""
    return require_scalar(value).to_bytes(SCALAR_SIZE, "big")


def scalar_from_bytes(data: bytes) -> int:
    """Parse 32 big-endian bytes as a scalar, rejecting values ``>= N``."""
    if len(data) != SCALAR_SIZE:
        raise CryptoError(f"a scalar is {SCALAR_SIZE} bytes, got {len(data)}")
    value = int.from_bytes(data, "big")
    if value >= N:
        raise CryptoError("scalar encoding is not reduced modulo N")
    return value


def scalar_to_hex(value: int) -> str:
    """Serialise a scalar as 64 lowercase hex characters."""
    return scalar_to_bytes(value).hex()


def scalar_from_hex(text: str) -> int:
    """Parse 64 hex characters as a scalar, rejecting malformed text and values ``>= N``."""
    return scalar_from_bytes(bytes_from_hex(text, SCALAR_SIZE, "scalar"))


def bytes_from_hex(text: str, size: int, name: str) -> bytes:
    """Decode hex ``text`` that must encode exactly ``size`` bytes."""
    if not isinstance(text, str):
        raise CryptoError(f"{name} must be a hex string, got {type(text).__name__}")
    try:
        data = bytes.fromhex(text)
    except ValueError as exc:
        raise CryptoError(f"{name} is not valid hex") from exc
    if len(data) != size:
        raise CryptoError(f"{name} must be {size} bytes, got {len(data)}")
    return data


def sha256(*parts: bytes) -> bytes:
    """Return SHA-256 of the plain concatenation of ``parts``."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.digest()


def tagged_hash(tag: str, *parts: bytes) -> bytes:
    """Return a domain-separated, unambiguous SHA-256 hash of ``parts``.

    The tag is hashed and prefixed twice (as in BIP-340), and every part is prefixed by its
    length as 8 big-endian bytes so that different splittings of the same bytes never
    collide.
    """
    tag_digest = hashlib.sha256(tag.encode("utf-8")).digest()
    digest = hashlib.sha256(tag_digest + tag_digest)
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.digest()


def hash_to_scalar(tag: str, *parts: bytes) -> int:
    """Hash ``parts`` under ``tag`` to a scalar in ``[0, N)`` (bias below 2**-127)."""
    return int.from_bytes(tagged_hash(tag, *parts), "big") % N


def derive_nonce(tag: str, secret: int, *parts: bytes) -> int:
    """Derive a deterministic non-zero nonce from a secret scalar and public data.

    The nonce is a tagged hash of the secret and ``parts`` with a trailing counter byte,
    retried (rejection sampling) until the digest is a scalar in ``[1, N)``. Distinct
    ``parts`` give independent nonces, so a nonce is never reused across two different
    statements proven with the same secret.
    """
    key = scalar_to_bytes(require_nonzero_scalar(secret, "secret"))
    for counter in range(256):
        candidate = int.from_bytes(tagged_hash(tag, key, *parts, bytes([counter])), "big")
        if 0 < candidate < N:
            return candidate
    raise CryptoError("nonce derivation failed after 256 attempts")
