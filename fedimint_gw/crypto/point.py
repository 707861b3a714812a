"""Points on secp256k1 as an immutable value type over coincurve's ``PublicKey``.

coincurve cannot represent the point at infinity, so neither can :class:`Point`: every
operation whose result would be infinity (``P + (-P)``, ``0 * P``, ``N * P``) raises
:class:`CryptoError` instead of returning a value. Callers that verify proofs treat that
error as "invalid".
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from coincurve import PrivateKey, PublicKey

from fedimint_gw.crypto.errors import CryptoError
from fedimint_gw.crypto.scalar import N, bytes_from_hex, scalar_to_bytes

COMPRESSED_SIZE: Final[int] = 33
UNCOMPRESSED_SIZE: Final[int] = 65


def _parse(data: bytes) -> PublicKey:
    try:
        return PublicKey(data)
    except (ValueError, TypeError) as exc:
        raise CryptoError("bytes do not encode a valid secp256k1 point") from exc


@dataclass(frozen=True)
class Point:
    """A valid, non-infinity secp256k1 point in canonical 33-byte compressed SEC1 form.

    Supports ``P + Q``, ``P - Q``, ``-P``, ``k * P`` and ``P * k`` (``k`` an int scalar);
    each raises :class:`CryptoError` when the result would be the point at infinity.
    """

    compressed: bytes
    _key: PublicKey = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.compressed, bytes) or len(self.compressed) != COMPRESSED_SIZE:
            raise CryptoError("a Point is built from 33 compressed bytes; use Point.from_bytes")
        object.__setattr__(self, "_key", _parse(self.compressed))

    @classmethod
    def from_bytes(cls, data: bytes) -> Point:
        """Parse a 33-byte compressed or 65-byte uncompressed SEC1 encoding."""
        if len(data) == COMPRESSED_SIZE:
            return cls(bytes(data))
        if len(data) == UNCOMPRESSED_SIZE:
            return cls.from_public_key(_parse(bytes(data)))
        raise CryptoError(f"a point is 33 or 65 bytes, got {len(data)}")

    @classmethod
    def from_hex(cls, text: str) -> Point:
        """Parse the hex of a 33-byte compressed SEC1 encoding."""
        return cls(bytes_from_hex(text, COMPRESSED_SIZE, "point"))

    @classmethod
    def from_public_key(cls, key: PublicKey) -> Point:
        """Wrap a coincurve ``PublicKey`` (no re-parse: the key is already a valid point)."""
        point = object.__new__(cls)
        object.__setattr__(point, "compressed", key.format(compressed=True))
        object.__setattr__(point, "_key", key)
        return point

    def to_bytes(self) -> bytes:
        """Return the 33-byte compressed SEC1 encoding."""
        return self.compressed

    def to_hex(self) -> str:
        """Return the compressed encoding as 66 lowercase hex characters."""
        return self.compressed.hex()

    def uncompressed(self) -> bytes:
        """Return the 65-byte uncompressed SEC1 encoding."""
        return self._key.format(compressed=False)

    def public_key(self) -> PublicKey:
        """The coincurve ``PublicKey`` of this point, parsed once. Shared: never call its
        methods with ``update=True`` (everything here uses the pure forms)."""
        return self._key

    def __add__(self, other: Point) -> Point:
        return add_points([self, other])

    def __neg__(self) -> Point:
        prefix = b"\x03" if self.compressed[0] == 2 else b"\x02"
        return Point(prefix + self.compressed[1:])

    def __sub__(self, other: Point) -> Point:
        return add_points([self, -other])

    def __mul__(self, scalar: int) -> Point:
        return multiply(self, scalar)

    def __rmul__(self, scalar: int) -> Point:
        return multiply(self, scalar)


def _nonzero_bytes(scalar: int) -> bytes:
    if isinstance(scalar, bool) or not isinstance(scalar, int):
        raise CryptoError(f"a scalar must be an int, got {type(scalar).__name__}")
    reduced = scalar % N
    if reduced == 0:
        raise CryptoError("scalar is zero modulo N: the result would be the point at infinity")
    return scalar_to_bytes(reduced)


@functools.cache
def generator() -> Point:
    """Return the secp256k1 base point G."""
    return Point.from_public_key(PrivateKey.from_int(1).public_key)


def base_multiply(scalar: int) -> Point:
    """Return ``scalar * G``; raise :class:`CryptoError` if ``scalar = 0 mod N``."""
    key = PrivateKey(_nonzero_bytes(scalar))
    return Point.from_public_key(key.public_key)


def multiply(point: Point, scalar: int) -> Point:
    """Return ``scalar * point``; raise :class:`CryptoError` if ``scalar = 0 mod N``."""
    return Point.from_public_key(point.public_key().multiply(_nonzero_bytes(scalar)))


def add_points(points: Iterable[Point]) -> Point:
    """Return the sum of one or more points.

    Raises :class:`CryptoError` for an empty input (coincurve would abort the process) and
    when the sum is the point at infinity.
    """
    keys = [point.public_key() for point in points]
    if not keys:
        raise CryptoError("cannot add an empty list of points")
    try:
        return Point.from_public_key(PublicKey.combine_keys(keys))
    except ValueError as exc:
        raise CryptoError("the sum of the points is the point at infinity") from exc


def linear_combination(terms: Iterable[tuple[int, Point]]) -> Point:
    """Return ``sum(scalar_i * point_i)``, skipping terms whose scalar is zero modulo N.

    Raises :class:`CryptoError` when every term is skipped or the sum is infinity.
    """
    products = [multiply(point, scalar) for scalar, point in terms if scalar % N != 0]
    if not products:
        raise CryptoError("linear combination has no non-zero term: the result is infinity")
    return add_points(products)
