"""Scalar arithmetic, hashing helpers and the Point value type."""

from __future__ import annotations

import pytest
from coincurve import PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from fedimint_gw.crypto.errors import CryptoError
from fedimint_gw.crypto.point import (
    Point,
    add_points,
    base_multiply,
    generator,
    linear_combination,
    multiply,
)
from fedimint_gw.crypto.scalar import (
    N,
    derive_nonce,
    hash_to_scalar,
    random_scalar,
    require_nonzero_scalar,
    scalar_from_bytes,
    scalar_from_hex,
    scalar_inv,
    scalar_mul,
    scalar_to_hex,
    tagged_hash,
)

scalars = st.integers(min_value=1, max_value=N - 1)
FEW = settings(max_examples=25, deadline=None)

G_HEX = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
G_UNCOMPRESSED_HEX = (
    "0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
    "483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8"
)


def test_group_order_matches_coincurve() -> None:
    with pytest.raises(ValueError):
        PrivateKey.from_int(N)
    assert PrivateKey.from_int(N - 1).to_int() == N - 1


def test_generator_encodings() -> None:
    g = generator()
    assert g.to_hex() == G_HEX
    assert g.uncompressed().hex() == G_UNCOMPRESSED_HEX
    assert Point.from_bytes(bytes.fromhex(G_UNCOMPRESSED_HEX)) == g
    assert base_multiply(1) == g


def test_random_scalar_is_in_range() -> None:
    values = {random_scalar() for _ in range(20)}
    assert len(values) == 20
    assert all(0 < value < N for value in values)


def test_scalar_inverse_of_zero_raises() -> None:
    with pytest.raises(CryptoError):
        scalar_inv(0)
    with pytest.raises(CryptoError):
        scalar_inv(N)


@FEW
@given(scalars)
def test_scalar_inverse(a: int) -> None:
    assert scalar_mul(a, scalar_inv(a)) == 1


@FEW
@given(st.integers(min_value=0, max_value=N - 1))
def test_scalar_hex_round_trip(a: int) -> None:
    assert scalar_from_hex(scalar_to_hex(a)) == a


def test_scalar_decoding_rejects_bad_input() -> None:
    with pytest.raises(CryptoError):
        scalar_from_bytes(N.to_bytes(32, "big"))
    with pytest.raises(CryptoError):
        scalar_from_bytes(b"\x01" * 31)
    with pytest.raises(CryptoError):
        scalar_from_hex("zz" * 32)
    with pytest.raises(CryptoError):
        require_nonzero_scalar(0)
    with pytest.raises(CryptoError):
        require_nonzero_scalar(True)


def test_tagged_hash_frames_parts() -> None:
    assert tagged_hash("t", b"ab", b"c") != tagged_hash("t", b"a", b"bc")
    assert tagged_hash("t", b"abc") != tagged_hash("u", b"abc")
    assert 0 <= hash_to_scalar("t", b"x") < N


def test_derive_nonce_is_deterministic_and_statement_bound() -> None:
    assert derive_nonce("t", 5, b"m") == derive_nonce("t", 5, b"m")
    assert derive_nonce("t", 5, b"m") != derive_nonce("t", 5, b"n")
    assert derive_nonce("t", 5, b"m") != derive_nonce("t", 6, b"m")


@FEW
@given(scalars, scalars)
def test_point_arithmetic_is_homomorphic(a: int, b: int) -> None:
    if (a + b) % N != 0:
        assert base_multiply(a) + base_multiply(b) == base_multiply(a + b)
    if a != b:
        assert base_multiply(a) - base_multiply(b) == base_multiply(a - b)
    assert a * base_multiply(b) == base_multiply(a * b % N) == base_multiply(b) * a
    assert -base_multiply(a) == base_multiply(N - a)
    if (a + b) % N != 0:
        combined = linear_combination([(a, generator()), (0, generator()), (b, generator())])
        assert combined == base_multiply(a + b)


@FEW
@given(scalars)
def test_point_serialisation_round_trip(a: int) -> None:
    point = base_multiply(a)
    assert Point.from_hex(point.to_hex()) == point
    assert Point.from_bytes(point.uncompressed()) == point
    assert Point.from_public_key(point.public_key()) == point
    assert hash(Point.from_hex(point.to_hex())) == hash(point)


def test_point_at_infinity_is_rejected() -> None:
    g = generator()
    with pytest.raises(CryptoError):
        g - g
    with pytest.raises(CryptoError):
        g + (-g)
    with pytest.raises(CryptoError):
        multiply(g, 0)
    with pytest.raises(CryptoError):
        multiply(g, N)
    with pytest.raises(CryptoError):
        base_multiply(0)
    with pytest.raises(CryptoError):
        add_points([])
    with pytest.raises(CryptoError):
        linear_combination([(0, g), (N, g)])
    with pytest.raises(CryptoError):
        linear_combination([(1, g), (N - 1, g)])


def test_invalid_point_encodings_are_rejected() -> None:
    with pytest.raises(CryptoError):
        Point(b"\x02" + b"\x00" * 32)  # x = 0 is not on the curve
    with pytest.raises(CryptoError):
        Point(b"\x05" + b"\x01" * 32)
    with pytest.raises(CryptoError):
        Point.from_hex(G_HEX[:-2])
    with pytest.raises(CryptoError):
        Point.from_hex("not hex")
    with pytest.raises(CryptoError):
        Point.from_bytes(b"\x04" + b"\x00" * 64)
