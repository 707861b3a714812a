"""Shamir secret sharing over the secp256k1 scalar field, and interpolation "in the exponent".

A secret ``k`` is the constant term of a random polynomial ``f`` of degree ``threshold - 1``;
guardian ``i`` (1-based) holds ``k_i = f(i)``. Any ``threshold`` shares recover ``k`` with
Lagrange coefficients at zero. Because interpolation is linear, the same coefficients
combine point shares: from ``C_i = k_i * B`` one gets ``sum(lambda_i * C_i) = k * B``, and
from public key shares ``K_i = k_i * G`` one gets ``K = k * G``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from fedimint_gw.crypto._codec import get_index, get_point, get_scalar, require_mapping
from fedimint_gw.crypto.errors import CryptoError, InvalidShareError
from fedimint_gw.crypto.point import Point, base_multiply, linear_combination
from fedimint_gw.crypto.scalar import (
    N,
    random_scalar,
    require_nonzero_scalar,
    require_scalar,
    scalar_inv,
    scalar_to_hex,
)


def require_index(index: int) -> int:
    """Return ``index`` if it is a valid share index (an int in ``[1, N)``)."""
    if isinstance(index, bool) or not isinstance(index, int) or not 0 < index < N:
        raise CryptoError(f"share index must be an int in [1, N), got {index!r}")
    return index


@dataclass(frozen=True)
class Share:
    """A secret scalar share ``f(index)``. ``value`` is secret and kept out of ``repr``.

    JSON form: ``{"index": 1, "value": "<64 hex>"}``.
    """

    index: int
    value: int = field(repr=False)

    def __post_init__(self) -> None:
        require_index(self.index)
        require_scalar(self.value, "share value")

    def public(self) -> PointShare:
        """Return the public key share ``value * G`` under the same index."""
        return PointShare(index=self.index, point=base_multiply(self.value))

    def to_dict(self) -> dict[str, object]:
        """Return the JSON-ready form."""
        return {"index": self.index, "value": scalar_to_hex(self.value)}

    @classmethod
    def from_dict(cls, data: object) -> Share:
        """Parse the form produced by :meth:`to_dict`; raise :class:`CryptoError` if malformed."""
        fields = require_mapping(data, "share")
        return cls(index=get_index(fields, "index", "share"), value=get_scalar(fields, "value", "share"))


@dataclass(frozen=True)
class PointShare:
    """A share in the exponent: ``point = f(index) * B`` for some base ``B``.

    Public key shares (``B = G``), blind signature shares and decryption shares all have
    this shape. JSON form: ``{"index": 1, "point": "<66 hex>"}``.
    """

    index: int
    point: Point

    def __post_init__(self) -> None:
        require_index(self.index)

    def to_dict(self) -> dict[str, object]:
        """Return the JSON-ready form."""
        return {"index": self.index, "point": self.point.to_hex()}

    @classmethod
    def from_dict(cls, data: object) -> PointShare:
        """Parse the form produced by :meth:`to_dict`; raise :class:`CryptoError` if malformed."""
        fields = require_mapping(data, "point share")
        return cls(
            index=get_index(fields, "index", "point share"),
            point=get_point(fields, "point", "point share"),
        )


def _evaluate(coefficients: Sequence[int], x: int) -> int:
    result = 0
    for coefficient in reversed(coefficients):
        result = (result * x + coefficient) % N
    return result


def split(secret: int, n: int, threshold: int) -> list[Share]:
    """Split a non-zero ``secret`` into ``n`` shares (indices ``1..n``), any ``threshold`` of
    which reconstruct it.

    The polynomial is redrawn in the negligible case that a share would be zero, so every
    share has a representable public key share.
    """
    require_nonzero_scalar(secret, "secret")
    for name, value in (("n", n), ("threshold", threshold)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise CryptoError(f"{name} must be an int")
    if not 1 <= threshold <= n < N:
        raise CryptoError(f"need 1 <= threshold <= n, got threshold={threshold}, n={n}")
    while True:
        coefficients = [secret] + [random_scalar() for _ in range(threshold - 1)]
        shares = [Share(index=i, value=_evaluate(coefficients, i)) for i in range(1, n + 1)]
        if all(share.value != 0 for share in shares):
            return shares


def check_indices(indices: Iterable[int]) -> list[int]:
    """Return ``indices`` as a list after checking they are valid, distinct and non-empty."""
    result = [require_index(index) for index in indices]
    if not result:
        raise CryptoError("at least one share is required")
    if len(set(result)) != len(result):
        raise CryptoError(f"share indices must be distinct, got {sorted(result)}")
    return result


def require_threshold(indices: Sequence[int], threshold: int) -> None:
    """Raise :class:`CryptoError` unless ``indices`` are distinct and at least ``threshold``.

    A repeated index raises :class:`InvalidShareError` naming it.
    """
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
        raise CryptoError(f"threshold must be a positive int, got {threshold!r}")
    seen: set[int] = set()
    for index in indices:
        if index in seen:
            raise InvalidShareError(index, "more than one share with this index")
        seen.add(index)
    if len(seen) < threshold:
        raise CryptoError(f"need at least {threshold} valid shares, got {len(seen)}")


def lagrange_coefficients(indices: Sequence[int], at: int = 0) -> dict[int, int]:
    """Return ``{i: lambda_i}`` such that ``f(at) = sum(lambda_i * f(i))`` for every
    polynomial ``f`` of degree below ``len(indices)``.

    Raises :class:`CryptoError` for an empty list, duplicates, or out-of-range indices.
    """
    checked = check_indices(indices)
    coefficients: dict[int, int] = {}
    for i in checked:
        numerator = 1
        denominator = 1
        for j in checked:
            if j != i:
                numerator = numerator * (at - j) % N
                denominator = denominator * (i - j) % N
        coefficients[i] = numerator * scalar_inv(denominator) % N
    return coefficients


def combine_scalars(shares: Sequence[Share]) -> int:
    """Interpolate the given shares at zero.

    No threshold is enforced: with fewer shares than the sharing threshold the result is
    a meaningless scalar, not an error.
    """
    weights = lagrange_coefficients([share.index for share in shares])
    return sum(weights[share.index] * share.value for share in shares) % N


def combine_points(shares: Sequence[PointShare]) -> Point:
    """Interpolate point shares at zero: ``sum(lambda_i * P_i)``.

    Like :func:`combine_scalars`, this does not verify the shares or enforce a threshold;
    the threshold-scheme modules do both before calling it. Raises :class:`CryptoError` if
    the combination is the point at infinity.
    """
    weights = lagrange_coefficients([share.index for share in shares])
    return linear_combination((weights[share.index], share.point) for share in shares)


def verify_public_shares(public_key: Point, shares: Sequence[PointShare], threshold: int) -> bool:
    """Check that public key shares ``K_i`` are consistent with ``public_key`` and ``threshold``.

    True when all shares lie on one polynomial (in the exponent) of degree below
    ``threshold`` whose value at zero is ``public_key``. Clients run this on a federation's
    configuration so that share verification against ``K_i`` is meaningful.
    """
    if threshold < 1 or len(shares) < threshold:
        return False
    try:
        check_indices(share.index for share in shares)
        ordered = sorted(shares, key=lambda share: share.index)
        basis, rest = ordered[:threshold], ordered[threshold:]
        if combine_points(basis) != public_key:
            return False
        for other in rest:
            weights = lagrange_coefficients([share.index for share in basis], at=other.index)
            if linear_combination((weights[s.index], s.point) for s in basis) != other.point:
                return False
    except CryptoError:
        return False
    return True
