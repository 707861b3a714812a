"""Thin typed helpers over ``py_arkworks_bls12381``: encodings, scalars, polynomials, pairings.

Scalars are plain ``int`` values in ``[0, R)``. Points are the library's ``G1Point`` and
``G2Point``. Encodings are Fedimint's consensus encodings: a scalar is 32 bytes little-endian
(``Scalar::to_bytes``), G1 is 48 bytes and G2 96 bytes compressed (the zkcrypto/Zcash format).
Decoding checks that a point is on the curve and in the prime-order subgroup, and raises
:class:`CryptoError` for anything malformed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from py_arkworks_bls12381 import GT, G1Point, G2Point, Scalar

from fedimint_gw.crypto.bls.fields import FP_BYTES, R
from fedimint_gw.crypto.errors import CryptoError

SCALAR_BYTES: Final[int] = 32
"""Length of an encoded scalar (little-endian)."""

G1_BYTES: Final[int] = FP_BYTES
"""Length of a compressed G1 point."""

G2_BYTES: Final[int] = 2 * FP_BYTES
"""Length of a compressed G2 point."""


def scalar_to_bytes(value: int) -> bytes:
    """Encode a scalar in ``[0, R)`` as 32 bytes little-endian."""
    if not 0 <= value < R:
        raise CryptoError("scalar out of range [0, r)")
    return value.to_bytes(SCALAR_BYTES, "little")


def scalar_from_bytes(data: bytes) -> int:
    """Decode 32 little-endian bytes, rejecting values ``>= R`` (non-canonical)."""
    if len(data) != SCALAR_BYTES:
        raise CryptoError(f"a scalar is {SCALAR_BYTES} bytes, got {len(data)}")
    value = int.from_bytes(data, "little")
    if value >= R:
        raise CryptoError("non-canonical scalar (>= r)")
    return value


def g1_generator() -> G1Point:
    """The standard G1 generator."""
    return G1Point()


def g2_generator() -> G2Point:
    """The standard G2 generator."""
    return G2Point()


def g1_mul(point: G1Point, k: int) -> G1Point:
    """Return ``point * k`` for a scalar ``k`` (taken mod R)."""
    return point * Scalar(k % R)


def g2_mul(point: G2Point, k: int) -> G2Point:
    """Return ``point * k`` for a scalar ``k`` (taken mod R)."""
    return point * Scalar(k % R)


def g1_from_bytes(data: bytes) -> G1Point:
    """Decode a 48-byte compressed G1 point (checked: on the curve, in the subgroup)."""
    if len(data) != G1_BYTES:
        raise CryptoError(f"a G1 point is {G1_BYTES} bytes, got {len(data)}")
    try:
        return G1Point.from_compressed_bytes(bytes(data))
    except ValueError as exc:
        raise CryptoError(f"invalid G1 point: {exc}") from exc


def g2_from_bytes(data: bytes) -> G2Point:
    """Decode a 96-byte compressed G2 point (checked: on the curve, in the subgroup)."""
    if len(data) != G2_BYTES:
        raise CryptoError(f"a G2 point is {G2_BYTES} bytes, got {len(data)}")
    try:
        return G2Point.from_compressed_bytes(bytes(data))
    except ValueError as exc:
        raise CryptoError(f"invalid G2 point: {exc}") from exc


def pairings_equal(a1: G1Point, a2: G2Point, b1: G1Point, b2: G2Point) -> bool:
    """Return ``e(a1, a2) == e(b1, b2)``, as one product-of-pairings check."""
    return GT.pairing_check([a1, -b1], [a2, b2])


def poly_eval(coefficients: Sequence[int], x: int) -> int:
    """Evaluate ``sum(c_i * x^i) mod R`` (Horner)."""
    acc = 0
    for coefficient in reversed(coefficients):
        acc = (acc * x + coefficient) % R
    return acc


def peer_x(peer: int) -> int:
    """Return the evaluation point of 0-based peer id ``peer``: ``x = peer + 1``."""
    if peer < 0:
        raise CryptoError(f"peer id must be >= 0, got {peer}")
    return peer + 1


def lagrange_coefficients(xs: Sequence[int]) -> list[int]:
    """Return ``lambda_i = prod_{j != i} x_j / (x_j - x_i) mod R`` for interpolation at 0.

    ``xs`` are the evaluation points (not peer ids: callers convert with :func:`peer_x`); they
    must be distinct and non-zero mod R. A single point gets the coefficient 1.
    """
    reduced = [x % R for x in xs]
    if not reduced:
        raise CryptoError("cannot interpolate from no shares")
    if len(set(reduced)) != len(reduced) or 0 in reduced:
        raise CryptoError("interpolation points must be distinct and non-zero")
    coefficients = []
    for i, xi in enumerate(reduced):
        numerator = 1
        denominator = 1
        for j, xj in enumerate(reduced):
            if j != i:
                numerator = numerator * xj % R
                denominator = denominator * (xj - xi) % R
        coefficients.append(numerator * pow(denominator, -1, R) % R)
    return coefficients


def g1_interpolate(points: Sequence[tuple[int, G1Point]]) -> G1Point:
    """Interpolate ``(x, point)`` pairs at 0 in the exponent: ``sum(lambda_i * point_i)``."""
    lambdas = lagrange_coefficients([x for x, _ in points])
    return G1Point.multiexp_unchecked([pt for _, pt in points], [Scalar(c) for c in lambdas])


def g2_interpolate(points: Sequence[tuple[int, G2Point]]) -> G2Point:
    """Interpolate ``(x, point)`` pairs at 0 in the exponent on G2."""
    lambdas = lagrange_coefficients([x for x, _ in points])
    return G2Point.multiexp_unchecked([pt for _, pt in points], [Scalar(c) for c in lambdas])


_G1T = TypeVar("_G1T", bound="G1Element")
_G2T = TypeVar("_G2T", bound="G2Element")
_ST = TypeVar("_ST", bound="ScalarElement")


@dataclass(frozen=True)
class G1Element:
    """Base of the value types that wrap one G1 point (48-byte consensus encoding)."""

    point: G1Point

    def encode(self) -> bytes:
        """Return the 48-byte compressed consensus encoding."""
        return self.point.to_compressed_bytes()

    @classmethod
    def decode(cls: type[_G1T], data: bytes) -> _G1T:
        """Parse the 48-byte compressed consensus encoding (checked)."""
        return cls(g1_from_bytes(data))


@dataclass(frozen=True)
class G2Element:
    """Base of the value types that wrap one G2 point (96-byte consensus encoding)."""

    point: G2Point

    def encode(self) -> bytes:
        """Return the 96-byte compressed consensus encoding."""
        return self.point.to_compressed_bytes()

    @classmethod
    def decode(cls: type[_G2T], data: bytes) -> _G2T:
        """Parse the 96-byte compressed consensus encoding (checked)."""
        return cls(g2_from_bytes(data))


@dataclass(frozen=True)
class ScalarElement:
    """Base of the value types that wrap one scalar (32-byte little-endian encoding)."""

    scalar: int

    def __post_init__(self) -> None:
        if not 0 <= self.scalar < R:
            raise CryptoError("scalar out of range [0, r)")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<secret>)"

    def encode(self) -> bytes:
        """Return the 32-byte little-endian consensus encoding."""
        return scalar_to_bytes(self.scalar)

    @classmethod
    def decode(cls: type[_ST], data: bytes) -> _ST:
        """Parse the 32-byte little-endian consensus encoding (canonical only)."""
        return cls(scalar_from_bytes(data))
