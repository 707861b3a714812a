"""BLS12-381 base-field arithmetic on plain integers, for the hash to curve only.

Group operations and pairings come from ``py_arkworks_bls12381``. The one thing that library
cannot do is Fedimint's non-standard "random point" hash, which needs square roots in Fp and
Fp2 with exactly the root the zkcrypto ``bls12_381`` 0.8 crate picks. That is all this module
provides. Elements of Fp are ``int`` in ``[0, P)``; elements of Fp2 = Fp[u]/(u^2 + 1) are
``(c0, c1)`` tuples meaning ``c0 + c1*u``. Nothing here is constant-time.
"""

from __future__ import annotations

from typing import Final

from fedimint_gw.crypto.errors import CryptoError

P: Final[int] = int(
    "1a0111ea397fe69a4b1ba7b6434bacd764774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab", 16
)
"""The base field modulus p of BLS12-381 (381 bits, p = 3 mod 4)."""

R: Final[int] = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
"""The prime order r of G1, G2 and GT (the scalar field)."""

FP_BYTES: Final[int] = 48
"""Length of a big-endian field element, and of a compressed G1 point."""

Fp2 = tuple[int, int]
"""An element ``c0 + c1*u`` of Fp2."""

FP2_ZERO: Final[Fp2] = (0, 0)
FP2_ONE: Final[Fp2] = (1, 0)

_SQRT_EXP: Final[int] = (P + 1) // 4
_FP2_SQRT_A1_EXP: Final[int] = (P - 3) // 4
_FP2_SQRT_B_EXP: Final[int] = (P - 1) // 2


def fp_from_u768(data: bytes) -> int:
    """Reduce 96 random bytes to Fp the way ``bls12_381`` 0.8 ``Fp::random`` does.

    The crate splits the bytes into two 48-byte big-endian halves ``d0`` (the FIRST 48 bytes)
    and ``d1`` (the last 48) and returns ``d0 + d1 * 2^384 mod p``, despite a comment there that
    suggests one big-endian 768-bit number.
    """
    if len(data) != 2 * FP_BYTES:
        raise CryptoError(f"Fp::random needs 96 bytes, got {len(data)}")
    d0 = int.from_bytes(data[:FP_BYTES], "big")
    d1 = int.from_bytes(data[FP_BYTES:], "big")
    return (d0 + (d1 << 384)) % P


def fp_sqrt(a: int) -> int | None:
    """Return the crate's square root ``a^((p+1)/4)`` of ``a``, or None if ``a`` is not a square."""
    root = pow(a, _SQRT_EXP, P)
    return root if root * root % P == a % P else None


def fp_is_lexicographically_largest(a: int) -> bool:
    """True when ``a > (p - 1) / 2``, the compressed-encoding "larger root" rule."""
    return a > (P - 1) // 2


def fp2_add(a: Fp2, b: Fp2) -> Fp2:
    """Return ``a + b``."""
    return ((a[0] + b[0]) % P, (a[1] + b[1]) % P)


def fp2_sub(a: Fp2, b: Fp2) -> Fp2:
    """Return ``a - b``."""
    return ((a[0] - b[0]) % P, (a[1] - b[1]) % P)


def fp2_neg(a: Fp2) -> Fp2:
    """Return ``-a``."""
    return ((-a[0]) % P, (-a[1]) % P)


def fp2_mul(a: Fp2, b: Fp2) -> Fp2:
    """Return ``a * b`` (Karatsuba: three base-field products)."""
    t0 = a[0] * b[0]
    t1 = a[1] * b[1]
    return ((t0 - t1) % P, ((a[0] + a[1]) * (b[0] + b[1]) - t0 - t1) % P)


def fp2_square(a: Fp2) -> Fp2:
    """Return ``a^2`` as ``(c0 + c1)(c0 - c1) + 2 c0 c1 u``."""
    return ((a[0] + a[1]) * (a[0] - a[1]) % P, 2 * a[0] * a[1] % P)


def fp2_mul_fp(a: Fp2, k: int) -> Fp2:
    """Return ``a * k`` for ``k`` in Fp."""
    return (a[0] * k % P, a[1] * k % P)


def fp2_conjugate(a: Fp2) -> Fp2:
    """Return ``c0 - c1*u``: the Frobenius map ``a^p``."""
    return (a[0], (-a[1]) % P)


def fp2_inverse(a: Fp2) -> Fp2:
    """Return ``1 / a``; raise :class:`CryptoError` for zero."""
    norm = (a[0] * a[0] + a[1] * a[1]) % P
    if norm == 0:
        raise CryptoError("zero has no inverse in Fp2")
    inv = pow(norm, -1, P)
    return (a[0] * inv % P, (-a[1]) * inv % P)


def fp2_pow(a: Fp2, exponent: int) -> Fp2:
    """Return ``a^exponent`` for ``exponent >= 0`` (left-to-right square and multiply)."""
    result = FP2_ONE
    for bit in bin(exponent)[2:]:
        result = fp2_square(result)
        if bit == "1":
            result = fp2_mul(result, a)
    return result


def fp2_sqrt(a: Fp2) -> Fp2 | None:
    """Return the square root of ``a`` that ``bls12_381`` 0.8 ``Fp2::sqrt`` returns, or None.

    Algorithm 9 of eprint 2012/685 (p = 3 mod 4): ``a1 = a^((p-3)/4)``, ``alpha = a1^2 * a``,
    ``x0 = a1 * a``; if ``alpha = -1`` the root is ``x0 * u``, otherwise it is
    ``(1 + alpha)^((p-1)/2) * x0``. The candidate is returned only if it squares to ``a``.
    Which of the two roots comes out matters: it fixes the sign of y before the sign flip.
    """
    a = (a[0] % P, a[1] % P)
    if a == FP2_ZERO:
        return FP2_ZERO
    a1 = fp2_pow(a, _FP2_SQRT_A1_EXP)
    alpha = fp2_mul(fp2_square(a1), a)
    x0 = fp2_mul(a1, a)
    if alpha == (P - 1, 0):
        candidate = ((-x0[1]) % P, x0[0])
    else:
        candidate = fp2_mul(fp2_pow(fp2_add(alpha, FP2_ONE), _FP2_SQRT_B_EXP), x0)
    return candidate if fp2_square(candidate) == a else None


def fp2_is_lexicographically_largest(a: Fp2) -> bool:
    """The compressed-encoding rule for Fp2: decided by ``c1``, or by ``c0`` when ``c1 = 0``."""
    if a[1] != 0:
        return fp_is_lexicographically_largest(a[1])
    return fp_is_lexicographically_largest(a[0])
