"""tpe (LNv2 threshold point encryption) against tests/unit/vectors/tpe.json (real crates).

Each case is recomputed from its inputs (keyset recipe, encryption seed, preimage, commitment) and
compared byte for byte; pairing checks, negative checks and the legacy hash variant are asserted
as the vectors give them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from fedimint_gw.crypto.bls import tpe
from fedimint_gw.crypto.bls.chacha import ChaChaRng, scalar_from_seed, scalar_random
from fedimint_gw.crypto.bls.dealer import random_coefficients, seeded_coefficients
from fedimint_gw.crypto.bls.errors import InvalidCiphertextError
from fedimint_gw.crypto.bls.group import g1_generator, g2_mul, pairings_equal, scalar_to_bytes
from fedimint_gw.crypto.errors import CryptoError

VECTORS = json.loads((Path(__file__).parent / "vectors" / "tpe.json").read_text())
TC_VECTORS = json.loads((Path(__file__).parent / "vectors" / "threshold_crypto.json").read_text())
KEYSETS: dict[str, dict[str, Any]] = {k["name"]: k for k in VECTORS["keysets"]}
CASES: list[dict[str, Any]] = VECTORS["cases"]


def keys_for(keyset: dict[str, Any]) -> tpe.DealerKeys:
    if keyset["name"] == "lnv1_migrated_t3_n4":
        # the threshold_crypto dealer: three successive Scalar::random draws from one rng
        rng = ChaChaRng(bytes.fromhex(TC_VECTORS["keysets"][0]["secret_key_set_rng_seed"]))
        return tpe.dealer_keys([scalar_random(rng) for _ in range(3)], keyset["peers"])
    return tpe.dealer_keys(seeded_coefficients(keyset["threshold"]), keyset["peers"])


@pytest.mark.parametrize("keyset", VECTORS["keysets"], ids=lambda k: k["name"])
def test_keyset(keyset: dict[str, Any]) -> None:
    keys = keys_for(keyset)
    if "coefficients" in keyset:
        expected = [c["scalar_le"] for c in keyset["coefficients"]]
        assert [scalar_to_bytes(c).hex() for c in seeded_coefficients(keyset["threshold"])] == expected
    assert keys.aggregate_public_key.encode().hex() == keyset["agg_pk_g1"]
    assert len(keys.public_key_shares) == len(keyset["peer_keys"])
    for peer in keyset["peer_keys"]:
        p = peer["peer_id"]
        assert peer["x"] == p + 1
        assert keys.secret_key_shares[p].encode().hex() == peer["sk_share_scalar_le"]
        assert keys.public_key_shares[p].encode().hex() == peer["pk_share_g1"]


@pytest.mark.parametrize("vector", VECTORS["scalar_random_vectors"], ids=lambda v: v["seed"][:8])
def test_ephemeral_scalar(vector: dict[str, Any]) -> None:
    assert scalar_to_bytes(scalar_from_seed(bytes.fromhex(vector["seed"]))).hex() == vector["scalar_le"]


@pytest.mark.parametrize("vector", VECTORS["hash_to_message_vectors"], ids=lambda v: v["ephemeral_pk_is"])
def test_hash_to_message(vector: dict[str, Any]) -> None:
    enc = bytes.fromhex(vector["encrypted_preimage_hex"])
    pk = tpe.EphemeralPublicKey.decode(bytes.fromhex(vector["ephemeral_pk_g1"]))
    commitment = bytes.fromhex(vector["commitment_hex"])
    assert (
        tpe.hash_to_message(enc, pk, commitment).to_compressed_bytes().hex() == vector["hash_to_message_g2"]
    )
    legacy = tpe.legacy_hash_to_message(enc, pk, commitment)
    assert legacy.to_compressed_bytes().hex() == vector["legacy_hash_to_message_g2"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_case(case: dict[str, Any]) -> None:
    keyset = KEYSETS[case["keyset"]]
    keys = keys_for(keyset)
    agg_pk = keys.aggregate_public_key
    seed = bytes.fromhex(case["encryption_seed"])
    preimage = bytes.fromhex(case["preimage_hex"])
    commitment = bytes.fromhex(case["commitment_hex"])

    assert scalar_to_bytes(scalar_from_seed(seed)).hex() == case["ephemeral_sk_scalar_le"]
    agg_dk = tpe.derive_agg_dk(agg_pk, seed)
    assert agg_dk.encode().hex() == case["agg_dk_g1"]

    ct = tpe.encrypt_preimage(agg_pk, seed, preimage, commitment)
    expected_ct = case["ciphertext"]
    assert ct.encrypted_preimage.hex() == expected_ct["encrypted_preimage_hex"]
    assert ct.pk.encode().hex() == expected_ct["pk_g1"]
    assert ct.signature.encode().hex() == expected_ct["signature_g2"]
    pad = bytes(a ^ b for a, b in zip(preimage, ct.encrypted_preimage, strict=True))
    assert pad.hex() == case["xor_pad_sha256_of_agg_dk"]
    assert hashlib.sha256(agg_dk.encode()).hexdigest() == case["xor_pad_sha256_of_agg_dk"]
    assert ct.encode().hex() == case["ciphertext_consensus_hex"]
    assert tpe.CipherText.decode(bytes.fromhex(case["ciphertext_consensus_hex"])) == ct
    assert ct.to_json() == case["ciphertext_serde_json"]
    assert tpe.CipherText.from_json(case["ciphertext_serde_json"]) == ct

    seed_input = bytes.fromhex(case["hash_to_message_seed_input_hex"])
    assert seed_input == tpe.MESSAGE_TAG + ct.encrypted_preimage + ct.pk.encode() + commitment
    h = tpe.hash_to_message(ct.encrypted_preimage, ct.pk, commitment)
    assert h.to_compressed_bytes().hex() == case["hash_to_message_g2"]
    assert tpe.verify_ciphertext(ct, commitment) is case["verify_ciphertext"]

    shares: dict[int, tpe.DecryptionKeyShare] = {}
    for expected in case["decryption_key_shares"]:
        p = expected["peer_id"]
        share = tpe.create_dk_share(keys.secret_key_shares[p], ct)
        assert share.encode().hex() == expected["decryption_key_share_g1"]
        ok = tpe.verify_dk_share(keys.public_key_shares[p], share, ct, commitment)
        assert ok is expected["verify_dk_share"]
        shares[p] = share

    for agg in case["aggregations"]:
        assert agg["x"] == [p + 1 for p in agg["peers"]]
        combined = tpe.aggregate_dk_shares({p: shares[p] for p in agg["peers"]})
        assert combined.encode().hex() == agg["agg_dk_g1"]
        assert (combined == agg_dk) is agg["equals_derive_agg_dk"]
        assert tpe.verify_agg_dk(agg_pk, combined, ct, commitment) is agg["verify_agg_dk"]
        assert tpe.decrypt_preimage(ct, combined).hex() == agg["decrypted_preimage_hex"]
    assert tpe.decrypt_preimage(ct, agg_dk).hex() == case["decrypt_preimage_hex"]

    for neg in case["negative_checks"]:
        assert neg["result"] is _negative_check(neg["check"], keys, ct, commitment, shares)

    legacy = case["legacy_hash_to_message"]
    legacy_input = bytes.fromhex(legacy["seed_input_hex"])
    assert legacy_input == bytes([0x1E]) + seed_input
    legacy_h = tpe.legacy_hash_to_message(ct.encrypted_preimage, ct.pk, commitment)
    assert legacy_h.to_compressed_bytes().hex() == legacy["hash_to_message_g2"]
    legacy_sig = g2_mul(legacy_h, scalar_from_seed(seed))
    assert legacy_sig.to_compressed_bytes().hex() == legacy["ciphertext_signature_g2"]
    assert pairings_equal(g1_generator(), legacy_sig, ct.pk.point, legacy_h) is legacy["pairing_check_passes"]
    legacy_ct = tpe.CipherText(ct.encrypted_preimage, ct.pk, tpe.EphemeralSignature(legacy_sig))
    assert tpe.verify_ciphertext(legacy_ct, commitment) is legacy["current_verify_ciphertext_accepts_it"]


def _negative_check(
    check: str,
    keys: tpe.DealerKeys,
    ct: tpe.CipherText,
    commitment: bytes,
    shares: dict[int, tpe.DecryptionKeyShare],
) -> bool:
    if check == "verify_ciphertext with encrypted_preimage[0] ^= 1":
        flipped = bytes([ct.encrypted_preimage[0] ^ 1]) + ct.encrypted_preimage[1:]
        return tpe.verify_ciphertext(tpe.CipherText(flipped, ct.pk, ct.signature), commitment)
    if check == "verify_ciphertext with commitment = ee*32":
        return tpe.verify_ciphertext(ct, b"\xee" * 32)
    if check == "verify_dk_share(pk share of peer 1, dk share of peer 0)":
        return tpe.verify_dk_share(keys.public_key_shares[1], shares[0], ct, commitment)
    if check == "verify_agg_dk(agg_pk, dk share of peer 0 used as agg_dk)":
        as_agg = tpe.AggregateDecryptionKey(shares[0].point)
        return tpe.verify_agg_dk(keys.aggregate_public_key, as_agg, ct, commitment)
    raise AssertionError(f"unknown negative check {check!r}")


def test_case_count() -> None:
    assert len(CASES) == 4
    assert sum(len(c["negative_checks"]) for c in CASES) == 14


# --- beyond the vectors ---------------------------------------------------------------------


def test_round_trip_random_keys_and_wrong_keys() -> None:
    keys = tpe.dealer_keys(random_coefficients(3), 4)
    other = tpe.dealer_keys(random_coefficients(3), 4)
    commitment = bytes(range(32))
    ct = tpe.encrypt_preimage(keys.aggregate_public_key, b"\x05" * 32, b"\x42" * 32, commitment)
    assert tpe.verify_ciphertext(ct, commitment)
    shares = {p: tpe.create_dk_share(keys.secret_key_shares[p], ct) for p in (1, 3, 2)}
    agg = tpe.aggregate_dk_shares(shares)
    assert tpe.verify_agg_dk(keys.aggregate_public_key, agg, ct, commitment)
    assert tpe.decrypt_preimage(ct, agg) == b"\x42" * 32
    # a share from another federation's key fails, and so does an aggregate of too few shares
    foreign = tpe.create_dk_share(other.secret_key_shares[1], ct)
    assert not tpe.verify_dk_share(keys.public_key_shares[1], foreign, ct, commitment)
    two = tpe.aggregate_dk_shares({1: shares[1], 3: shares[3]})
    assert not tpe.verify_agg_dk(keys.aggregate_public_key, two, ct, commitment)
    assert tpe.decrypt_preimage(ct, two) != b"\x42" * 32


def test_share_checks_refuse_an_invalid_ciphertext() -> None:
    case = CASES[0]
    ct = tpe.CipherText.decode(bytes.fromhex(case["ciphertext_consensus_hex"]))
    keys = keys_for(KEYSETS[case["keyset"]])
    share = tpe.create_dk_share(keys.secret_key_shares[0], ct)
    with pytest.raises(InvalidCiphertextError):
        tpe.verify_dk_share(keys.public_key_shares[0], share, ct, b"\x00" * 32)
    with pytest.raises(InvalidCiphertextError):
        tpe.verify_agg_dk(
            keys.aggregate_public_key,
            tpe.derive_agg_dk(keys.aggregate_public_key, bytes(32)),
            ct,
            b"\x00" * 32,
        )


def test_malformed_ciphertexts_are_rejected() -> None:
    raw = bytes.fromhex(CASES[0]["ciphertext_consensus_hex"])
    with pytest.raises(CryptoError):
        tpe.CipherText.decode(raw[:-1])
    with pytest.raises(CryptoError):
        tpe.CipherText.decode(raw[:32] + bytes(48) + raw[80:])
    good_json = CASES[0]["ciphertext_serde_json"]
    for bad in (
        [],
        {**good_json, "encrypted_preimage": [256] * 32},
        {**good_json, "encrypted_preimage": [1] * 31},
        {**good_json, "pk": "zz"},
        {**good_json, "signature": 5},
    ):
        with pytest.raises(CryptoError):
            tpe.CipherText.from_json(bad)
    with pytest.raises(CryptoError):
        tpe.encrypt_preimage(tpe.AggregatePublicKey(g1_generator()), bytes(32), bytes(31), bytes(32))
