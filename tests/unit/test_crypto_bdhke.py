"""BDHKE against the Cashu NUT-00 published vectors, plus round-trip properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedimint_gw.crypto import bdhke
from fedimint_gw.crypto.errors import CryptoError
from fedimint_gw.crypto.point import Point, base_multiply
from fedimint_gw.crypto.scalar import N

FEW = settings(max_examples=25, deadline=None)
scalars = st.integers(min_value=1, max_value=N - 1)

# cashubtc/nuts tests/00-tests.md: hash_to_curve.
HASH_TO_CURVE_VECTORS = [
    (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "024cce997d3b518f739663b757deaec95bcd9473c30a14ac2fd04023a739d1a725",
    ),
    (
        "0000000000000000000000000000000000000000000000000000000000000001",
        "022e7158e11c9506f1aa4248bf531298daa7febd6194f003edcd9b93ade6253acf",
    ),
    (  # needs several iterations of the counter loop
        "0000000000000000000000000000000000000000000000000000000000000002",
        "026cdbe15362df59cd1dd3c9c11de8aedac2106eca69236ecd9fbe117af897be4f",
    ),
]

# cashubtc/nuts tests/00-tests.md: blinded messages (x, r, B_).
BLINDED_MESSAGE_VECTORS = [
    (
        "d341ee4871f1f889041e63cf0d3823c713eea6aff01e80f1719f08f9e5be98f6",
        "99fce58439fc37412ab3468b73db0569322588f62fb3a49182d67e23d877824a",
        "033b1a9737a40cc3fd9b6af4b723632b76a67a36782596304612a6c2bfb5197e6d",
    ),
    (
        "f1aaf16c2239746f369572c0784d9dd3d032d952c2d992175873fb58fae31a60",
        "f78476ea7cc9ade20f9e05e58a804cf19533f03ea805ece5fee88c8e2874ba50",
        "029bdf2d716ee366eddf599ba252786c1033f47e230248a4612a5670ab931f1763",
    ),
]

# cashubtc/nuts tests/00-tests.md: blinded signatures (k, B_, C_).
BLIND_SIGNATURE_VECTORS = [
    (
        "0000000000000000000000000000000000000000000000000000000000000001",
        "02a9acc1e48c25eeeb9289b5031cc57da9fe72f3fe2861d264bdc074209b107ba2",
        "02a9acc1e48c25eeeb9289b5031cc57da9fe72f3fe2861d264bdc074209b107ba2",
    ),
    (
        "7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f",
        "02a9acc1e48c25eeeb9289b5031cc57da9fe72f3fe2861d264bdc074209b107ba2",
        "0398bc70ce8184d27ba89834d19f5199c84443c31131e48d3c1214db24247d005d",
    ),
]


@pytest.mark.parametrize(("message", "point"), HASH_TO_CURVE_VECTORS)
def test_hash_to_curve_nut00_vectors(message: str, point: str) -> None:
    assert bdhke.hash_to_curve(bytes.fromhex(message)).to_hex() == point


@pytest.mark.parametrize(("secret", "r", "blinded"), BLINDED_MESSAGE_VECTORS)
def test_blind_nut00_vectors(secret: str, r: str, blinded: str) -> None:
    result = bdhke.blind(bytes.fromhex(secret), int(r, 16))
    assert result.blinded.to_hex() == blinded
    assert result.blinding_factor == int(r, 16)
    assert r not in repr(result)


@pytest.mark.parametrize(("k", "blinded", "signature"), BLIND_SIGNATURE_VECTORS)
def test_sign_nut00_vectors(k: str, blinded: str, signature: str) -> None:
    assert bdhke.sign(int(k, 16), Point.from_hex(blinded)).to_hex() == signature


def test_unblind_vector() -> None:
    # cashubtc/nutshell tests/test_crypto.py (test_step3): C_ and K = 02||00..01, r = 1.
    blind_signature = Point.from_hex("02a9acc1e48c25eeeb9289b5031cc57da9fe72f3fe2861d264bdc074209b107ba2")
    public_key = Point.from_hex("02" + "00" * 31 + "01")
    signature = bdhke.unblind(blind_signature, 1, public_key)
    assert signature.to_hex() == "03c724d7e6a5443b39ac8acf11f40420adc4f99a02e7cc1b57703d9391f6d129cd"


@FEW
@given(st.binary(max_size=64), scalars, scalars)
def test_blind_sign_unblind_verify(secret: bytes, k: int, r: int) -> None:
    blinding = bdhke.blind(secret, r)
    signature = bdhke.unblind(bdhke.sign(k, blinding.blinded), r, base_multiply(k))
    assert signature == k * bdhke.hash_to_curve(secret)
    assert bdhke.verify(k, secret, signature)
    assert not bdhke.verify(k, secret + b"x", signature)
    other_key = k + 1 if k < N - 1 else 1
    assert not bdhke.verify(other_key, secret, signature)


def test_random_blinding_factor() -> None:
    first = bdhke.blind(b"secret")
    second = bdhke.blind(b"secret")
    assert first.blinded != second.blinded
    assert 0 < first.blinding_factor < N


def test_zero_inputs_are_rejected() -> None:
    point = bdhke.hash_to_curve(b"x")
    with pytest.raises(CryptoError):
        bdhke.blind(b"x", 0)
    with pytest.raises(CryptoError):
        bdhke.sign(0, point)
    with pytest.raises(CryptoError):
        bdhke.unblind(point, N, point)
