"""threshold_crypto (LNv1 preimage encryption) against tests/unit/vectors/threshold_crypto.json.

The vectors were computed by the unmodified fedimint-threshold-crypto 0.2.1 crate. Every case is
re-encrypted from its seed and compared byte for byte, then shares, share checks, combinations
(with the crate's "first threshold + 1 in the order given" rule) and negative checks are asserted.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from fedimint_gw.crypto.bls import threshold_crypto as tc
from fedimint_gw.crypto.bls.chacha import ChaChaRng
from fedimint_gw.crypto.bls.errors import InvalidCiphertextError, NotEnoughSharesError
from fedimint_gw.crypto.bls.group import g1_from_bytes, g1_generator, g1_mul, scalar_to_bytes
from fedimint_gw.crypto.errors import CryptoError

VECTORS = json.loads((Path(__file__).parent / "vectors" / "threshold_crypto.json").read_text())
KEYSET: dict[str, Any] = VECTORS["keysets"][0]
CASES: list[dict[str, Any]] = VECTORS["cases"]


def secret_key_set() -> tc.SecretKeySet:
    rng = ChaChaRng(bytes.fromhex(KEYSET["secret_key_set_rng_seed"]))
    return tc.SecretKeySet.random(KEYSET["threshold_param"], rng)


def test_keyset() -> None:
    sks = secret_key_set()
    assert [scalar_to_bytes(c).hex() for c in sks.coefficients] == KEYSET["poly_coefficients_scalar_le"]
    pks = sks.public_keys()
    assert pks.threshold == KEYSET["threshold_param"] == KEYSET["shares_needed"] - 1
    assert pks.public_key().encode().hex() == KEYSET["master_public_key_g1"]
    assert [p.to_compressed_bytes().hex() for p in pks.commitment] == KEYSET["commitment_coefficients_g1"]
    assert pks.encode().hex() == KEYSET["public_key_set_consensus_hex"]
    assert tc.PublicKeySet.decode(bytes.fromhex(KEYSET["public_key_set_consensus_hex"])) == pks
    for peer in KEYSET["peer_keys"]:
        i = peer["peer_index"]
        assert peer["x"] == i + 1
        assert sks.secret_key_share(i).encode().hex() == peer["secret_key_share_scalar_le"]
        assert pks.public_key_share(i).encode().hex() == peer["public_key_share_g1"]
        derived = g1_mul(g1_generator(), sks.secret_key_share(i).scalar)
        assert derived.to_compressed_bytes().hex() == peer["public_key_share_g1"]


@pytest.mark.parametrize("vector", VECTORS["hash_g2_vectors"], ids=lambda v: v["input_hex"][:8] or "empty")
def test_hash_g2(vector: dict[str, Any]) -> None:
    assert tc.hash_g2(bytes.fromhex(vector["input_hex"])).to_compressed_bytes().hex() == vector["hash_g2"]


@pytest.mark.parametrize("vector", VECTORS["hash_g1_g2_vectors"], ids=lambda v: v["g1_is"])
def test_hash_g1_g2(vector: dict[str, Any]) -> None:
    g1 = g1_from_bytes(bytes.fromhex(vector["g1"]))
    msg = bytes.fromhex(vector["msg_hex"])
    head = msg if len(msg) <= 64 else hashlib.sha3_256(msg).digest()
    assert (head + g1.to_compressed_bytes()).hex() == vector["hash_g2_input_hex"]
    assert tc.hash_g1_g2(g1, msg).to_compressed_bytes().hex() == vector["hash_g1_g2"]


@pytest.mark.parametrize("vector", VECTORS["xor_with_hash_vectors"], ids=lambda v: v["point_is"])
def test_xor_with_hash(vector: dict[str, Any]) -> None:
    point = g1_from_bytes(bytes.fromhex(vector["point_g1"]))
    assert tc.xor_with_hash(point, bytes(48)).hex() == vector["keystream_48_bytes_hex"]
    assert (
        tc.xor_with_hash(point, bytes.fromhex(vector["plaintext_hex"])).hex() == vector["xor_with_hash_hex"]
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_case(case: dict[str, Any]) -> None:
    sks = secret_key_set()
    pks = sks.public_keys()
    plaintext = bytes.fromhex(case["plaintext_hex"])

    ct = tc.encrypt_with_rng(
        pks.public_key(), plaintext, ChaChaRng(bytes.fromhex(case["encryption_rng_seed"]))
    )
    assert ct.u.to_compressed_bytes().hex() == case["U_g1"]
    assert ct.w.to_compressed_bytes().hex() == case["W_g2"]
    assert ct.v.hex() == case["V_hex"]
    assert ct.to_bytes().hex() == case["ciphertext_to_bytes_hex"]
    assert ct.encode().hex() == case["ciphertext_consensus_hex"]
    assert tc.Ciphertext.decode(bytes.fromhex(case["ciphertext_consensus_hex"])) == ct
    assert tc.Ciphertext.from_bytes(bytes.fromhex(case["ciphertext_to_bytes_hex"])) == ct

    r = int.from_bytes(bytes.fromhex(case["r_scalar_le"]), "little")
    assert g1_mul(g1_generator(), r) == ct.u
    shared = g1_mul(pks.public_key().point, r)
    assert shared.to_compressed_bytes().hex() == case["shared_point_g1"]
    assert tc.xor_with_hash(shared, bytes(len(plaintext))).hex() == case["xor_keystream_hex"]
    v = ct.v if len(ct.v) <= 64 else hashlib.sha3_256(ct.v).digest()
    assert (v + ct.u.to_compressed_bytes()).hex() == case["hash_g1_g2_input_hex"]
    assert tc.hash_g1_g2(ct.u, ct.v).to_compressed_bytes().hex() == case["hash_g1_g2_g2"]
    assert tc.verify_ciphertext(ct) is case["verify"]

    shares: dict[int, tc.DecryptionShare] = {}
    for expected in case["decryption_shares"]:
        i = expected["peer_index"]
        share = tc.decrypt_share(sks.secret_key_share(i), ct)
        assert share.encode().hex() == expected["decryption_share_g1"]
        ok = tc.verify_decryption_share(pks.public_key_share(i), share, ct)
        assert ok is expected["verify_decryption_share"]
        shares[i] = share

    for combo in case["combine"]:
        assert combo["indices_used"] == combo["indices_in_order"][: pks.threshold + 1]
        assert combo["x_used"] == [i + 1 for i in combo["indices_used"]]
        decrypted = tc.decrypt(pks, [(i, shares[i]) for i in combo["indices_in_order"]], ct)
        assert decrypted.hex() == combo["decrypted_hex"]
        assert (decrypted == plaintext) is combo["equals_plaintext"]

    derivations = case["lnv1_preimage_key_derivations"]
    if derivations is not None:
        preimage = hashlib.sha256(plaintext).digest()
        assert preimage.hex() == derivations["lightning_preimage_sha256_of_plaintext"]
        assert hashlib.sha256(preimage).hexdigest() == derivations["payment_hash_sha256_of_that"]

    for neg in case["negative_checks"]:
        assert _negative_check(neg, pks, ct, shares) is neg["result"]


def _negative_check(
    neg: dict[str, Any], pks: tc.PublicKeySet, ct: tc.Ciphertext, shares: dict[int, tc.DecryptionShare]
) -> bool:
    check = neg["check"]
    if check.startswith("verify_decryption_share(pk share of peer 1, share of peer 0)"):
        return tc.verify_decryption_share(pks.public_key_share(1), shares[0], ct)
    if check.startswith("PublicKeySet::decrypt with only shares 0,1"):
        try:
            tc.decrypt(pks, [(0, shares[0]), (1, shares[1])], ct)
        except NotEnoughSharesError:
            return False
        return True
    if check.startswith("Ciphertext with last byte of V flipped"):
        tampered_bytes = bytes.fromhex(neg["tampered_ciphertext_hex"])
        raw = ct.to_bytes()
        assert tampered_bytes == raw[:-1] + bytes([raw[-1] ^ 1])
        return tc.verify_ciphertext(tc.Ciphertext.from_bytes(tampered_bytes))
    raise AssertionError(f"unknown negative check {check!r}")


def test_case_count() -> None:
    assert len(CASES) == 5
    assert sum(len(c["combine"]) for c in CASES) == 30
    assert sum(len(c["negative_checks"]) for c in CASES) == 15


# --- beyond the vectors -------------------------------------------------------------------------


def test_tampered_ciphertext_gets_no_share_and_wrong_shares_fail() -> None:
    sks = secret_key_set()
    pks = sks.public_keys()
    ct = tc.encrypt(pks.public_key(), b"\x07" * 33)
    assert tc.verify_ciphertext(ct)
    tampered = tc.Ciphertext(u=ct.u, v=ct.v, w=tc.hash_g2(b"other"))
    assert not tc.verify_ciphertext(tampered)
    with pytest.raises(InvalidCiphertextError):
        tc.decrypt_share(sks.secret_key_share(0), tampered)
    other = tc.SecretKeySet.random(2, ChaChaRng(b"\x01" * 32))
    foreign = tc.decrypt_share(other.secret_key_share(2), ct)
    assert not tc.verify_decryption_share(pks.public_key_share(2), foreign, ct)
    shares = [(i, tc.decrypt_share(sks.secret_key_share(i), ct)) for i in (3, 0, 1)]
    assert tc.decrypt(pks, shares, ct) == b"\x07" * 33
    assert tc.decrypt(pks, [shares[0], (2, foreign), shares[2]], ct) != b"\x07" * 33


def test_malformed_encodings_are_rejected() -> None:
    raw = bytes.fromhex(CASES[0]["ciphertext_consensus_hex"])
    for bad in (b"", raw[:-1], raw + b"\x00", b"\xfd\x00\xb1" + raw[1:], bytes([0xB1]) + bytes(177)):
        with pytest.raises(CryptoError):
            tc.Ciphertext.decode(bad)
    with pytest.raises(CryptoError):
        tc.Ciphertext.from_bytes(raw[1:100])
    pks_raw = bytes.fromhex(KEYSET["public_key_set_consensus_hex"])
    with pytest.raises(CryptoError):
        tc.PublicKeySet.decode(pks_raw[:-1])
    with pytest.raises(CryptoError):
        tc.PublicKeySet.decode(b"\x00")


def test_long_ciphertext_uses_three_byte_bigsize() -> None:
    pks = secret_key_set().public_keys()
    ct = tc.encrypt(pks.public_key(), bytes(200))
    encoded = ct.encode()
    assert encoded[:3] == b"\xfd" + (144 + 200).to_bytes(2, "big")
    assert tc.Ciphertext.decode(encoded) == ct
