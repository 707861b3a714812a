"""TEST-ONLY BLS12-381 G1 arithmetic in pure Python: decompress, scalar-multiply, compress.

Just enough for the fake guardian to blind-sign (S = B * sk) what the official client submits; to be
replaced by the project's crypto layer (a pairing library) once it lands. Not constant time.
"""

from __future__ import annotations

P = 0x1A0111EA397FE69A4B1BA7B6434BACD764774B84F38512BF6730D2A0F6B0F6241EABFFFEB153FFFFB9FEFFFFFFFFAAAB
R = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
B = 4  # y^2 = x^3 + 4

COMPRESSED = 0x80
INFINITY = 0x40
LARGEST_Y = 0x20

Affine = tuple[int, int] | None  # None is the point at infinity
Jacobian = tuple[int, int, int]


class G1Error(ValueError):
    """Bytes that are not a compressed G1 point."""


def decompress(data: bytes) -> Affine:
    """A 48-byte compressed point (zkcrypto / Zcash format)."""
    if len(data) != 48 or not data[0] & COMPRESSED:
        raise G1Error("a compressed G1 point is 48 bytes with the compression flag set")
    if data[0] & INFINITY:
        return None
    x = int.from_bytes(bytes([data[0] & 0x1F]) + data[1:], "big")
    if x >= P:
        raise G1Error("x is not a field element")
    rhs = (pow(x, 3, P) + B) % P
    y = pow(rhs, (P + 1) // 4, P)
    if y * y % P != rhs:
        raise G1Error("x is not on the curve")
    if bool(data[0] & LARGEST_Y) != (y > (P - 1) // 2):
        y = P - y
    return x, y


def compress(point: Affine) -> bytes:
    """The 48-byte compressed form."""
    if point is None:
        return bytes([COMPRESSED | INFINITY]) + bytes(47)
    x, y = point
    out = bytearray(x.to_bytes(48, "big"))
    out[0] |= COMPRESSED | (LARGEST_Y if y > (P - 1) // 2 else 0)
    return bytes(out)


def _double(pt: Jacobian) -> Jacobian:
    x, y, z = pt
    if z == 0 or y == 0:
        return (1, 1, 0)
    a = x * x % P
    b = y * y % P
    c = b * b % P
    d = 2 * ((x + b) ** 2 - a - c) % P
    e = 3 * a % P
    x3 = (e * e - 2 * d) % P
    return x3, (e * (d - x3) - 8 * c) % P, 2 * y * z % P


def _add(p1: Jacobian, p2: Jacobian) -> Jacobian:
    if p1[2] == 0:
        return p2
    if p2[2] == 0:
        return p1
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    z1z1, z2z2 = z1 * z1 % P, z2 * z2 % P
    u1, u2 = x1 * z2z2 % P, x2 * z1z1 % P
    s1, s2 = y1 * z2 * z2z2 % P, y2 * z1 * z1z1 % P
    if u1 == u2:
        return _double(p1) if s1 == s2 else (1, 1, 0)
    h = (u2 - u1) % P
    i = 4 * h * h % P
    j = h * i % P
    rr = 2 * (s2 - s1) % P
    v = u1 * i % P
    x3 = (rr * rr - j - 2 * v) % P
    y3 = (rr * (v - x3) - 2 * s1 * j) % P
    z3 = ((z1 + z2) ** 2 - z1z1 - z2z2) * h % P
    return x3, y3, z3


def multiply(point: Affine, scalar: int) -> Affine:
    """scalar * point."""
    if point is None or scalar % R == 0:
        return None
    acc: Jacobian = (1, 1, 0)
    base: Jacobian = (point[0], point[1], 1)
    for bit in bin(scalar % R)[2:]:
        acc = _double(acc)
        if bit == "1":
            acc = _add(acc, base)
    x, y, z = acc
    if z == 0:
        return None
    zinv = pow(z, -1, P)
    return x * zinv * zinv % P, y * zinv * zinv * zinv % P


def scalar_from_le(data: bytes) -> int:
    """A 32-byte little-endian scalar, as Fedimint encodes them."""
    return int.from_bytes(data, "little") % R
