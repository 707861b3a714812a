"""DLEQ proofs: Cashu NUT-12 vectors, the generic form, tampering and serialisation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedimint_gw.crypto import bdhke, dleq
from fedimint_gw.crypto.errors import CryptoError
from fedimint_gw.crypto.point import Point, base_multiply, generator
from fedimint_gw.crypto.scalar import N

FEW = settings(max_examples=25, deadline=None)
scalars = st.integers(min_value=1, max_value=N - 1)

ONE_AS_POINT = "02" + "00" * 31 + "01"  # x = 1 is on secp256k1
B_HEX = "02a9acc1e48c25eeeb9289b5031cc57da9fe72f3fe2861d264bdc074209b107ba2"
G_HEX = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"


def P(text: str) -> Point:
    return Point.from_hex(text)


def test_hash_e_nut12_vector() -> None:
    # cashubtc/nuts tests/12-tests.md: hash_e(R1, R2, K, C_).
    digest = dleq.hash_e(P(ONE_AS_POINT), P(ONE_AS_POINT), P(ONE_AS_POINT), P(B_HEX))
    assert digest.hex() == "a4dc034b74338c28c6bc3ea49731f2a24440fc7c4affc08b31a93fc9fbe6401e"


def test_deterministic_nonce_nut12_vector() -> None:
    # cashubtc/nuts tests/12-tests.md: deterministic nonce derivation with a = 2.
    a = 2
    public_key = P("02c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5")
    blind_signature = P("0244eccfc7a348274458bb38044c7f3c389b3c2086c7ec18b5812d2877ab937787")
    assert base_multiply(a) == public_key
    assert bdhke.sign(a, P(B_HEX)) == blind_signature
    proof = dleq.prove(a, P(B_HEX))
    assert proof.to_dict() == {
        "e": "be53688e1952a916726cf4f031584404c6a79b32ccf0b58f3db9a46794abc1dc",
        "s": "1d6ecdf7ca128c90f65bd64e1f894fad985be8af6b350fece5ca4e9e259a54ad",
    }
    assert dleq.verify(proof, public_key, P(B_HEX), blind_signature)


@pytest.mark.parametrize(
    ("a", "e", "s"),
    [
        # cashubtc/nutshell tests/test_crypto.py (test_dleq_step2_bob_dleq), nonce p = 1.
        (
            0x1,
            "9818e061ee51d5c8edc3342369a554998ff7b4381c8652d724cdf46429be73d9",
            "9818e061ee51d5c8edc3342369a554998ff7b4381c8652d724cdf46429be73da",
        ),
        (
            0x1111,
            "df1984d5c22f7e17afe33b8669f02f530f286ae3b00a1978edaf900f4721f65e",
            "828404170c86f240c50ae0f5fc17bb6b82612d46b355e046d7cd84b0a3c934a0",
        ),
    ],
)
def test_prove_with_explicit_nonce_vectors(a: int, e: str, s: str) -> None:
    proof = dleq.prove(a, P(B_HEX), nonce=1)
    assert proof.to_dict() == {"e": e, "s": s}
    assert dleq.verify(proof, base_multiply(a), P(B_HEX), bdhke.sign(a, P(B_HEX)))


def test_blind_signature_dleq_nut12_vector() -> None:
    # cashubtc/nuts tests/12-tests.md: BlindSignature with a valid DLEQ (A = G, C_ = B_).
    proof = dleq.Dleq.from_dict(
        {
            "e": "9818e061ee51d5c8edc3342369a554998ff7b4381c8652d724cdf46429be73d9",
            "s": "9818e061ee51d5c8edc3342369a554998ff7b4381c8652d724cdf46429be73da",
        }
    )
    assert dleq.verify(proof, P(G_HEX), P(B_HEX), P(B_HEX))
    assert not dleq.verify(proof, base_multiply(2), P(B_HEX), P(B_HEX))


def test_proof_dleq_nut12_vector() -> None:
    # cashubtc/nuts tests/12-tests.md: Proof with a valid DLEQ, checked the "Carol" way.
    secret = b"daf4dd00a2b68a0858a80450f52c8a7d2ccf87d375e43e216e0c571f089f63e9"
    signature = P("024369d2d22a80ecf78f3937da9d5f30c1b9f74f0c32684d583cca0fa6a61cdcfc")
    proof = dleq.Dleq.from_dict(
        {
            "e": "b31e58ac6527f34975ffab13e70a48b6d2b0d35abc4b03f0151f09ee1a9763d4",
            "s": "8fbae004c59e754d71df67e392b6ae4e29293113ddc2ec86592a0431d16306d8",
        }
    )
    r = int("a6d13fcd7a18442e6076f5e1e7c887ad5de40a019824bdfa9fe740d302e8d861", 16)
    assert dleq.verify_unblinded(proof, P(G_HEX), secret, signature, r)
    assert not dleq.verify_unblinded(proof, P(G_HEX), secret + b"0", signature, r)
    assert not dleq.verify_unblinded(proof, P(G_HEX), secret, signature, r + 1)
    assert not dleq.verify_unblinded(proof, P(G_HEX), secret, signature, 0)


@FEW
@given(scalars, st.binary(max_size=32), scalars)
def test_nut12_round_trip_and_tamper(k: int, secret: bytes, r: int) -> None:
    blinding = bdhke.blind(secret, r)
    public_key = base_multiply(k)
    blind_signature = bdhke.sign(k, blinding.blinded)
    proof = dleq.prove(k, blinding.blinded)
    assert dleq.verify(proof, public_key, blinding.blinded, blind_signature)
    signature = bdhke.unblind(blind_signature, r, public_key)
    assert dleq.verify_unblinded(proof, public_key, secret, signature, r)
    # A signature made with a different key does not verify against this key.
    other = bdhke.sign(k + 1 if k < N - 1 else 1, blinding.blinded)
    assert not dleq.verify(proof, public_key, blinding.blinded, other)
    assert not dleq.verify(
        dleq.Dleq(proof.e, (proof.s + 1) % N), public_key, blinding.blinded, blind_signature
    )
    assert not dleq.verify(
        dleq.Dleq((proof.e + 1) % N, proof.s), public_key, blinding.blinded, blind_signature
    )


@FEW
@given(scalars, scalars, st.binary(max_size=16))
def test_generic_round_trip_and_binding(x: int, h: int, context: bytes) -> None:
    base = base_multiply(h)
    public = base_multiply(x)
    result = base * x
    proof = dleq.prove_equal_log(x, base, context)
    assert dleq.verify_equal_log(proof, public, base, result, context)
    assert not dleq.verify_equal_log(proof, public, base, result, context + b"!")
    wrong_result = base * ((x + 1) % N or 1)
    assert not dleq.verify_equal_log(proof, public, base, wrong_result, context)
    if h != 1:
        assert not dleq.verify_equal_log(proof, public, generator(), result, context)
    assert not dleq.verify_equal_log(dleq.Dleq(proof.e, (proof.s + 1) % N), public, base, result, context)


def test_generic_proof_for_wrong_secret_fails() -> None:
    base = base_multiply(7)
    proof = dleq.prove_equal_log(5, base)
    assert not dleq.verify_equal_log(proof, base_multiply(5), base, base * 6)
    assert dleq.prove_equal_log(5, base) == proof  # deterministic nonce
    assert dleq.prove_equal_log(5, base, b"ctx") != proof


def test_degenerate_proofs_are_rejected_not_raised() -> None:
    # e = s = 0 makes R1 the point at infinity; verification must simply fail.
    zero = dleq.Dleq(0, 0)
    assert not dleq.verify(zero, P(G_HEX), P(B_HEX), P(B_HEX))
    assert not dleq.verify_equal_log(zero, P(G_HEX), P(B_HEX), P(B_HEX))


@FEW
@given(st.integers(0, N - 1), st.integers(0, N - 1))
def test_dleq_dict_round_trip(e: int, s: int) -> None:
    proof = dleq.Dleq(e, s)
    assert dleq.Dleq.from_dict(proof.to_dict()) == proof


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"e": "00" * 32},
        {"e": "00" * 32, "s": 5},
        {"e": "00" * 32, "s": "00" * 31},
        {"e": "ff" * 32, "s": "00" * 32},
        {"e": "gg" * 32, "s": "00" * 32},
    ],
)
def test_dleq_from_dict_rejects_malformed(data: object) -> None:
    with pytest.raises(CryptoError):
        dleq.Dleq.from_dict(data)


def test_dleq_rejects_out_of_range_scalars() -> None:
    with pytest.raises(CryptoError):
        dleq.Dleq(N, 0)
    with pytest.raises(CryptoError):
        dleq.prove(0, P(B_HEX))
    with pytest.raises(CryptoError):
        dleq.prove(1, P(B_HEX), nonce=0)
