"""Fedimint's "random point" hash to G1 and G2, in pure integer arithmetic.

``bls12_381`` 0.8 ``G1Projective::random`` / ``G2Projective::random`` (what Fedimint's tbs, tpe
and threshold_crypto call with a seeded ChaCha generator) is not RFC 9380 hash-to-curve:

1. draw x: ``Fp::random`` (96 bytes, see :func:`fields.fp_from_u768`); for G2 two of them,
   ``c0`` then ``c1``;
2. draw one more 32-bit word; if it is odd, y will be negated;
3. y = the crate's square root of x^3 + 4 (G2: x^3 + 4(1 + u)); no root: start again;
4. clear the cofactor: G1 multiplies by ``1 - z = 0xd201000000010001``; G2 uses the
   Budroni-Pintore map ``psi^2(2P) + [z^2 - z - 1]P + [z - 1]psi(P)`` (multiplication by RFC
   9380's ``h_eff``), with the curve parameter ``z = -0xd201000000010000``;
5. start again if the result is the identity.

The arithmetic stays in Jacobian coordinates on Python integers; only the final point is handed
to ``py_arkworks_bls12381`` through its compressed encoding, which that library checks (on the
curve and in the prime-order subgroup). Nothing here is constant-time.
"""

from __future__ import annotations

from typing import Final

from py_arkworks_bls12381 import G1Point, G2Point

from fedimint_gw.crypto.bls.chacha import ChaChaRng
from fedimint_gw.crypto.bls.fields import (
    FP2_ONE,
    FP2_ZERO,
    FP_BYTES,
    Fp2,
    P,
    fp2_add,
    fp2_conjugate,
    fp2_inverse,
    fp2_is_lexicographically_largest,
    fp2_mul,
    fp2_mul_fp,
    fp2_neg,
    fp2_sqrt,
    fp2_square,
    fp2_sub,
    fp_from_u768,
    fp_is_lexicographically_largest,
    fp_sqrt,
)

BLS_Z_ABS: Final[int] = 0xD201000000010000
"""``|z|`` for the BLS12-381 curve parameter ``z = -0xd201000000010000``."""

G1_COFACTOR_EFF: Final[int] = 0xD201000000010001
"""``1 - z``: the effective G1 cofactor that ``bls12_381`` multiplies by."""

G2_H_EFF: Final[int] = int(
    "bc69f08f2ee75b3584c6a0ea91b352888e2a8e9145ad7689986ff031508ffe1329c2f178731db956"
    "d82bf015d1212b02ec0ec69d7477c1ae954cbc06689f6a359894c0adebbf6b4e8020005aaa95551",
    16,
)
"""RFC 9380 ``h_eff`` for G2; the psi-based clearing equals multiplication by it."""

_B_G1: Final[int] = 4
_B_G2: Final[Fp2] = (4, 4)

# psi(x, y) = (conj(x) * PSI_X, conj(y) * PSI_Y) with PSI_X = 1 / (1 + u)^((p - 1) / 3) and
# PSI_Y = 1 / (1 + u)^((p - 1) / 2); tests recompute both from their definition.
PSI_X: Final[Fp2] = (
    0,
    int(
        "1a0111ea397fe699ec02408663d4de85aa0d857d89759ad4897d29650fb85f9b409427eb4f49fffd8bfd00000000aaad",
        16,
    ),
)
PSI_Y: Final[Fp2] = (
    int(
        "135203e60180a68ee2e9c448d77a2cd91c3dedd930b1cf60ef396489f61eb45e304466cf3e67fa0af1ee7b04121bdea2",
        16,
    ),
    int(
        "06af0e0437ff400b6831e36d6bd17ffe48395dabc2d3435e77f76e17009241c5ee67992f72ec05f4c81084fbede3cc09",
        16,
    ),
)

G1Jac = tuple[int, int, int]
"""A G1 point ``(X, Y, Z)`` in Jacobian coordinates, affine ``(X/Z^2, Y/Z^3)``; Z = 0 is infinity."""

G2Jac = tuple[Fp2, Fp2, Fp2]
"""A G2 point in Jacobian coordinates over Fp2; Z = 0 is infinity."""

_G1_INFINITY: Final[G1Jac] = (1, 1, 0)
_G2_INFINITY: Final[G2Jac] = (FP2_ONE, FP2_ONE, FP2_ZERO)


# --- G1 over Fp -------------------------------------------------------------------------------


def _g1_double(pt: G1Jac) -> G1Jac:
    x, y, z = pt
    if z == 0 or y == 0:
        return _G1_INFINITY
    a = x * x % P
    b = y * y % P
    c = b * b % P
    d = 2 * ((x + b) * (x + b) - a - c) % P
    e = 3 * a % P
    x3 = (e * e - 2 * d) % P
    return x3, (e * (d - x3) - 8 * c) % P, 2 * y * z % P


def _g1_add(p1: G1Jac, p2: G1Jac) -> G1Jac:
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    if z1 == 0:
        return p2
    if z2 == 0:
        return p1
    z1z1 = z1 * z1 % P
    z2z2 = z2 * z2 % P
    u1 = x1 * z2z2 % P
    u2 = x2 * z1z1 % P
    s1 = y1 * z2 * z2z2 % P
    s2 = y2 * z1 * z1z1 % P
    if u1 == u2:
        return _g1_double(p1) if s1 == s2 else _G1_INFINITY
    h = (u2 - u1) % P
    i = 4 * h * h % P
    j = h * i % P
    r = 2 * (s2 - s1) % P
    v = u1 * i % P
    x3 = (r * r - j - 2 * v) % P
    y3 = (r * (v - x3) - 2 * s1 * j) % P
    z3 = ((z1 + z2) * (z1 + z2) - z1z1 - z2z2) * h % P
    return x3, y3, z3


def _g1_multiply(pt: G1Jac, k: int) -> G1Jac:
    acc = _G1_INFINITY
    for bit in bin(k)[2:]:
        acc = _g1_double(acc)
        if bit == "1":
            acc = _g1_add(acc, pt)
    return acc


def _g1_compress(pt: G1Jac) -> bytes:
    x, y, z = pt
    if z == 0:
        return bytes([0xC0]) + bytes(FP_BYTES - 1)
    zinv = pow(z, -1, P)
    zinv2 = zinv * zinv % P
    ax = x * zinv2 % P
    ay = y * zinv2 * zinv % P
    out = bytearray(ax.to_bytes(FP_BYTES, "big"))
    out[0] |= 0x80 | (0x20 if fp_is_lexicographically_largest(ay) else 0)
    return bytes(out)


# --- G2 over Fp2 ------------------------------------------------------------------------------


def _g2_double(pt: G2Jac) -> G2Jac:
    x, y, z = pt
    if z == FP2_ZERO or y == FP2_ZERO:
        return _G2_INFINITY
    a = fp2_square(x)
    b = fp2_square(y)
    c = fp2_square(b)
    xb = fp2_add(x, b)
    d = fp2_sub(fp2_sub(fp2_square(xb), a), c)
    d = fp2_add(d, d)
    e = fp2_add(fp2_add(a, a), a)
    x3 = fp2_sub(fp2_square(e), fp2_add(d, d))
    y3 = fp2_sub(fp2_mul(e, fp2_sub(d, x3)), fp2_mul_fp(c, 8))
    yz = fp2_mul(y, z)
    return x3, y3, fp2_add(yz, yz)


def _g2_add(p1: G2Jac, p2: G2Jac) -> G2Jac:
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    if z1 == FP2_ZERO:
        return p2
    if z2 == FP2_ZERO:
        return p1
    z1z1 = fp2_square(z1)
    z2z2 = fp2_square(z2)
    u1 = fp2_mul(x1, z2z2)
    u2 = fp2_mul(x2, z1z1)
    s1 = fp2_mul(fp2_mul(y1, z2), z2z2)
    s2 = fp2_mul(fp2_mul(y2, z1), z1z1)
    if u1 == u2:
        return _g2_double(p1) if s1 == s2 else _G2_INFINITY
    h = fp2_sub(u2, u1)
    i = fp2_mul_fp(fp2_square(h), 4)
    j = fp2_mul(h, i)
    r = fp2_mul_fp(fp2_sub(s2, s1), 2)
    v = fp2_mul(u1, i)
    x3 = fp2_sub(fp2_sub(fp2_square(r), j), fp2_mul_fp(v, 2))
    y3 = fp2_sub(fp2_mul(r, fp2_sub(v, x3)), fp2_mul_fp(fp2_mul(s1, j), 2))
    z3 = fp2_mul(fp2_sub(fp2_sub(fp2_square(fp2_add(z1, z2)), z1z1), z2z2), h)
    return x3, y3, z3


def _g2_neg(pt: G2Jac) -> G2Jac:
    return pt[0], fp2_neg(pt[1]), pt[2]


def g2_multiply(pt: G2Jac, k: int) -> G2Jac:
    """Return ``[k]pt`` for an integer ``k >= 0`` (any point on the curve, not only the subgroup)."""
    acc = _G2_INFINITY
    for bit in bin(k)[2:]:
        acc = _g2_double(acc)
        if bit == "1":
            acc = _g2_add(acc, pt)
    return acc


def _g2_mul_by_z(pt: G2Jac) -> G2Jac:
    return _g2_neg(g2_multiply(pt, BLS_Z_ABS))


def _g2_psi(pt: G2Jac) -> G2Jac:
    x, y, z = pt
    return (
        fp2_mul(fp2_conjugate(x), PSI_X),
        fp2_mul(fp2_conjugate(y), PSI_Y),
        fp2_conjugate(z),
    )


def g2_clear_cofactor(pt: G2Jac) -> G2Jac:
    """Return ``psi^2(2P) + [z^2 - z - 1]P + [z - 1]psi(P)`` (= ``[h_eff]P``)."""
    t1 = _g2_mul_by_z(pt)
    t2 = _g2_psi(pt)
    acc = _g2_psi(_g2_psi(_g2_double(pt)))
    acc = _g2_add(acc, _g2_mul_by_z(_g2_add(t1, t2)))
    acc = _g2_add(acc, _g2_neg(t1))
    acc = _g2_add(acc, _g2_neg(t2))
    return _g2_add(acc, _g2_neg(pt))


def g2_compress(pt: G2Jac) -> bytes:
    """Return the 96-byte compressed encoding (x.c1 then x.c0, big-endian, with flag bits)."""
    x, y, z = pt
    if z == FP2_ZERO:
        return bytes([0xC0]) + bytes(2 * FP_BYTES - 1)
    zinv = fp2_inverse(z)
    zinv2 = fp2_square(zinv)
    ax = fp2_mul(x, zinv2)
    ay = fp2_mul(fp2_mul(y, zinv2), zinv)
    out = bytearray(ax[1].to_bytes(FP_BYTES, "big") + ax[0].to_bytes(FP_BYTES, "big"))
    out[0] |= 0x80 | (0x20 if fp2_is_lexicographically_largest(ay) else 0)
    return bytes(out)


def g2_point_from_x(x: Fp2, negate: bool) -> G2Jac | None:
    """Return the curve point with abscissa ``x`` and the crate's root as y (negated on request)."""
    y = fp2_sqrt(fp2_add(fp2_mul(fp2_square(x), x), _B_G2))
    if y is None:
        return None
    return x, fp2_neg(y) if negate else y, FP2_ONE


# --- the random-point recipes -----------------------------------------------------------------


def g1_random(rng: ChaChaRng) -> G1Point:
    """``G1Projective::random(rng)`` of ``bls12_381`` 0.8: a point of the prime-order subgroup."""
    while True:
        x = fp_from_u768(rng.fill_bytes(2 * FP_BYTES))
        negate = rng.next_u32() % 2 != 0
        y = fp_sqrt((x * x * x + _B_G1) % P)
        if y is None:
            continue
        cleared = _g1_multiply((x, (P - y) % P if negate else y, 1), G1_COFACTOR_EFF)
        if cleared[2] != 0:
            return G1Point.from_compressed_bytes(_g1_compress(cleared))


def g2_random(rng: ChaChaRng) -> G2Point:
    """``G2Projective::random(rng)`` of ``bls12_381`` 0.8: a point of the prime-order subgroup."""
    while True:
        c0 = fp_from_u768(rng.fill_bytes(2 * FP_BYTES))
        c1 = fp_from_u768(rng.fill_bytes(2 * FP_BYTES))
        negate = rng.next_u32() % 2 != 0
        point = g2_point_from_x((c0, c1), negate)
        if point is None:
            continue
        cleared = g2_clear_cofactor(point)
        if cleared[2] != FP2_ZERO:
            return G2Point.from_compressed_bytes(g2_compress(cleared))
