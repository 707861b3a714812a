"""ChaCha, Scalar::random and Fedimint's random-point hash against the crate-computed vectors.

The vectors in tests/unit/vectors/ were computed by the real Rust crates (zkcrypto bls12_381
0.8.0, rand_chacha 0.3.1, fedimint-threshold-crypto 0.2.1, Fedimint's tbs and tpe); see each
file's ``source``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from py_arkworks_bls12381 import G1Point, G2Point

from fedimint_gw.crypto.bls import curve, fields
from fedimint_gw.crypto.bls.chacha import ChaChaRng, chacha20_block, scalar_from_seed, scalar_random
from fedimint_gw.crypto.bls.group import lagrange_coefficients, scalar_to_bytes
from fedimint_gw.crypto.errors import CryptoError

VECTORS = Path(__file__).parent / "vectors"


def load(name: str) -> dict[str, Any]:
    with (VECTORS / name).open() as f:
        data: dict[str, Any] = json.load(f)
    return data


TBS = load("tbs.json")
TPE = load("tpe.json")
TC = load("threshold_crypto.json")


# --- ChaCha20 ---------------------------------------------------------------------------------


def test_chacha20_rfc7539_block_zero_key() -> None:
    # RFC 7539 A.1 test vector #1 (all-zero key, nonce and counter), also rand_chacha's own test.
    expected = bytes.fromhex(
        "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7"
        "da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586"
    )
    words = chacha20_block((0,) * 8, 0)
    assert b"".join(w.to_bytes(4, "little") for w in words) == expected


def test_chacha_rng_words_then_partial_fill_drops_rest_of_word() -> None:
    a = ChaChaRng(bytes(32))
    b = ChaChaRng(bytes(32))
    first = a.fill_bytes(3)  # consumes a whole word
    assert first == b.fill_bytes(4)[:3]
    assert a.next_u32() == b.next_u32()
    # crossing a 16-word block boundary keeps the stream contiguous
    stream = ChaChaRng(bytes(32)).fill_bytes(128)
    assert stream[64:] == b"".join(w.to_bytes(4, "little") for w in chacha20_block((0,) * 8, 1))


def test_chacha_rng_rejects_short_seed() -> None:
    with pytest.raises(CryptoError):
        ChaChaRng(bytes(31))


@pytest.mark.parametrize("vector", TC["xor_with_hash_vectors"], ids=lambda v: v["point_is"])
def test_chacha_first_words(vector: dict[str, Any]) -> None:
    point = bytes.fromhex(vector["point_g1"])
    seed = hashlib.sha3_256(point).digest()
    assert seed.hex() == vector["sha3_256_seed"]
    rng = ChaChaRng(seed)
    assert [f"{rng.next_u32():08x}" for _ in range(4)] == vector["first_chacha_u32_words"]


# --- Scalar::random -----------------------------------------------------------------------------


@pytest.mark.parametrize("vector", TPE["scalar_random_vectors"], ids=lambda v: v["seed"][:8])
def test_scalar_random(vector: dict[str, Any]) -> None:
    assert scalar_to_bytes(scalar_from_seed(bytes.fromhex(vector["seed"]))) == bytes.fromhex(
        vector["scalar_le"]
    )


def test_scalar_random_consumes_64_bytes() -> None:
    rng = ChaChaRng(bytes(32))
    scalar_random(rng)
    reference = ChaChaRng(bytes(32))
    reference.fill_bytes(64)
    assert rng.next_u32() == reference.next_u32()


@pytest.mark.parametrize("keyset", [k for k in TBS["keysets"]], ids=lambda k: k["name"])
def test_dealer_coefficient_seeds(keyset: dict[str, Any]) -> None:
    for c in keyset["coefficients"]:
        seed = hashlib.sha256(c["index"].to_bytes(8, "big")).digest()
        assert seed.hex() == c["seed_sha256_of_u64_be"]
        assert scalar_to_bytes(scalar_from_seed(seed)).hex() == c["scalar_le"]


def test_threshold_crypto_poly_is_three_successive_draws() -> None:
    keyset = TC["keysets"][0]
    rng = ChaChaRng(bytes.fromhex(keyset["secret_key_set_rng_seed"]))
    draws = [scalar_to_bytes(scalar_random(rng)).hex() for _ in range(3)]
    assert draws == keyset["poly_coefficients_scalar_le"]


# --- field arithmetic ---------------------------------------------------------------------------


def test_fp_from_u768_uses_first_half_as_low_digit() -> None:
    data = (1).to_bytes(48, "big") + (2).to_bytes(48, "big")
    assert fields.fp_from_u768(data) == (1 + (2 << 384)) % fields.P


def test_fp2_sqrt_roots_square_back_and_nonsquares_fail() -> None:
    seen_none = False
    for k in range(1, 40):
        a = (k * 7919 % fields.P, k * 104729 % fields.P)
        root = fields.fp2_sqrt(a)
        if root is None:
            seen_none = True
        else:
            assert fields.fp2_square(root) == a
    assert seen_none
    # -1 is a non-square in Fp, so Algorithm 9 takes its alpha = -1 branch: x0 * u with
    # x0 = (-1)^((p+1)/4) = -1 ((p+1)/4 is odd), i.e. the root -u, not u.
    minus_one = (fields.P - 1, 0)
    assert fields.fp2_sqrt(minus_one) == (0, fields.P - 1)


def test_psi_constants_match_definition() -> None:
    one_plus_u = (1, 1)
    assert fields.fp2_inverse(fields.fp2_pow(one_plus_u, (fields.P - 1) // 3)) == curve.PSI_X
    assert fields.fp2_inverse(fields.fp2_pow(one_plus_u, (fields.P - 1) // 2)) == curve.PSI_Y


def test_psi_cofactor_clearing_equals_h_eff_multiplication() -> None:
    rng = ChaChaRng(bytes([9]) * 32)
    point = None
    while point is None:
        x = (fields.fp_from_u768(rng.fill_bytes(96)), fields.fp_from_u768(rng.fill_bytes(96)))
        point = curve.g2_point_from_x(x, negate=False)
    by_psi = curve.g2_compress(curve.g2_clear_cofactor(point))
    by_h_eff = curve.g2_compress(curve.g2_multiply(point, curve.G2_H_EFF))
    assert by_psi == by_h_eff
    assert G2Point.from_compressed_bytes(by_psi).is_in_subgroup()


# --- the random-point hash --------------------------------------------------------------------


@pytest.mark.parametrize("vector", TBS["hash_vectors"], ids=lambda v: f"{v['function']}-{v['input_hex'][:8]}")
def test_tbs_hash_to_g1(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["input_hex"])
    if vector["function"] == "Message::from_bytes":
        seed = hashlib.sha3_256(b"TBS_BLS12-381_" + data).digest()
        assert seed.hex() == vector["sha3_256_seed"]
    else:
        seed = hashlib.sha256(b"FEDIMINT_TBS_BLS12_381_MESSAGE" + data).digest()
        assert seed.hex() == vector["sha256_seed"]
    point = curve.g1_random(ChaChaRng(seed))
    assert point.to_compressed_bytes().hex() == vector["message_g1"]
    assert point.is_in_subgroup()
    assert point != G1Point.identity()


@pytest.mark.parametrize("vector", TC["hash_g2_vectors"], ids=lambda v: v["input_hex"][:8] or "empty")
def test_hash_g2(vector: dict[str, Any]) -> None:
    seed = hashlib.sha3_256(bytes.fromhex(vector["input_hex"])).digest()
    assert seed.hex() == vector["sha3_256_seed"]
    assert curve.g2_random(ChaChaRng(seed)).to_compressed_bytes().hex() == vector["hash_g2"]


def test_different_seeds_give_different_points() -> None:
    assert curve.g1_random(ChaChaRng(bytes(32))) != curve.g1_random(ChaChaRng(bytes([1]) * 32))


# --- Lagrange coefficients ------------------------------------------------------------------------


def _all_aggregations() -> list[dict[str, Any]]:
    found = [a for c in TBS["cases"] for a in c["aggregations"]]
    found += [a for c in TPE["cases"] for a in c["aggregations"]]
    found += [{"x": a["x_used"], **a} for c in TC["cases"] for a in c["combine"]]
    return found


def test_lagrange_coefficients_match_vectors() -> None:
    aggregations = _all_aggregations()
    assert len(aggregations) == (3 * 5 + 1) + (3 * 5 + 1) + 5 * 6
    for agg in aggregations:
        got = [scalar_to_bytes(c).hex() for c in lagrange_coefficients(agg["x"])]
        assert got == agg["lagrange_coefficients_le"]


def test_lagrange_rejects_duplicates_zero_and_empty() -> None:
    for xs in ([1, 1], [0, 2], []):
        with pytest.raises(CryptoError):
            lagrange_coefficients(xs)
