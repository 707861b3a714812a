"""Threshold ElGamal: encrypt a preimage to the federation, decrypt with any t shares."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedimint_gw.crypto import dleq, shamir
from fedimint_gw.crypto import threshold_elgamal as te
from fedimint_gw.crypto.errors import CryptoError, InvalidShareError
from fedimint_gw.crypto.point import Point, base_multiply, generator
from fedimint_gw.crypto.scalar import N

FEW = settings(max_examples=25, deadline=None)
scalars = st.integers(min_value=1, max_value=N - 1)
preimages = st.binary(min_size=32, max_size=32)
CONTEXT = b"payment-hash|amount=1000"


class Federation:
    def __init__(self, secret: int, n: int = 4, t: int = 3) -> None:
        self.secret = secret
        self.threshold = t
        self.public_key = base_multiply(secret)
        self.shares = shamir.split(secret, n, t)
        self.public_key_shares: dict[int, Point] = {s.index: s.public().point for s in self.shares}

    def decryption_shares(
        self, ciphertext: te.Ciphertext, context: bytes = CONTEXT
    ) -> list[te.DecryptionShare]:
        return [te.create_share(share, self.public_key, ciphertext, context) for share in self.shares]


@FEW
@given(scalars, preimages, st.lists(st.integers(1, 4), min_size=3, max_size=3, unique=True))
def test_any_t_shares_decrypt(secret: int, preimage: bytes, subset: list[int]) -> None:
    fed = Federation(secret)
    ciphertext = te.encrypt(fed.public_key, preimage, CONTEXT)
    assert te.verify_ciphertext(fed.public_key, ciphertext, CONTEXT)
    shares = fed.decryption_shares(ciphertext)
    for share in shares:
        assert te.verify_share(fed.public_key_shares[share.index], ciphertext, share)
    chosen = [shares[i - 1] for i in subset]
    assert te.decrypt(fed.public_key, ciphertext, CONTEXT, chosen, fed.public_key_shares, 3) == preimage
    assert te.decrypt(fed.public_key, ciphertext, CONTEXT, shares, fed.public_key_shares, 3) == preimage
    assert te.decrypt_with_secret_key(secret, ciphertext, CONTEXT) == preimage


@FEW
@given(scalars, preimages, st.integers(1, 2))
def test_fewer_than_t_shares_do_not_decrypt(secret: int, preimage: bytes, count: int) -> None:
    fed = Federation(secret)
    ciphertext = te.encrypt(fed.public_key, preimage, CONTEXT)
    shares = fed.decryption_shares(ciphertext)[:count]
    with pytest.raises(CryptoError):
        te.decrypt(fed.public_key, ciphertext, CONTEXT, shares, fed.public_key_shares, 3)
    # Interpolating too few shares anyway gives the wrong key, hence the wrong preimage.
    wrong = shamir.combine_points([shamir.PointShare(s.index, s.point) for s in shares])
    assert wrong != ciphertext.ephemeral * secret


def test_bad_decryption_shares_are_rejected_naming_the_guardian() -> None:
    fed = Federation(0x5EED)
    preimage = hashlib.sha256(b"preimage").digest()
    ciphertext = te.encrypt(fed.public_key, preimage, CONTEXT)
    good = fed.decryption_shares(ciphertext)

    def decrypt_with(shares: list[te.DecryptionShare]) -> bytes:
        return te.decrypt(fed.public_key, ciphertext, CONTEXT, shares, fed.public_key_shares, 3)

    # Guardian 2 answers with a share of another federation's key (an honest proof for that key).
    other = Federation(0xBAD).shares[1]
    foreign = te.create_share(other, fed.public_key, ciphertext, CONTEXT)
    assert not te.verify_share(fed.public_key_shares[2], ciphertext, foreign)
    with pytest.raises(InvalidShareError) as info:
        decrypt_with([good[0], foreign, good[2]])
    assert info.value.index == 2
    assert "2" in str(info.value)

    # Guardian 3's point is tampered with, proof kept.
    tampered = te.DecryptionShare(3, good[2].point + generator(), good[2].proof)
    with pytest.raises(InvalidShareError) as info:
        decrypt_with([good[0], good[1], tampered])
    assert info.value.index == 3

    # Guardian 4's proof is tampered with, point kept.
    bad_proof = te.DecryptionShare(4, good[3].point, dleq.Dleq(good[3].proof.e, (good[3].proof.s + 1) % N))
    with pytest.raises(InvalidShareError) as info:
        decrypt_with([good[0], good[1], bad_proof])
    assert info.value.index == 4

    # Guardian 4 relabels guardian 1's share as its own.
    relabelled = te.DecryptionShare(4, good[0].point, good[0].proof)
    with pytest.raises(InvalidShareError) as info:
        decrypt_with([good[1], good[2], relabelled])
    assert info.value.index == 4

    # A share computed for another ciphertext is not valid for this one.
    other_ct = te.encrypt(fed.public_key, preimage, CONTEXT)
    stale = fed.decryption_shares(other_ct)[0]
    assert not te.verify_share(fed.public_key_shares[1], ciphertext, stale)

    # Duplicates and unknown guardians.
    with pytest.raises(InvalidShareError):
        decrypt_with([good[0], good[0], good[1]])
    stranger = te.create_share(shamir.Share(7, 99), fed.public_key, ciphertext, CONTEXT)
    with pytest.raises(InvalidShareError) as info:
        decrypt_with([good[0], good[1], stranger])
    assert info.value.index == 7

    # A gateway that skips bad guardians can still decrypt with the honest ones.
    candidates = [good[0], foreign, tampered, good[3], good[1]]
    valid = [s for s in candidates if te.verify_share(fed.public_key_shares[s.index], ciphertext, s)]
    assert decrypt_with(valid) == preimage


def test_ciphertext_is_bound_to_key_and_context() -> None:
    fed = Federation(31337)
    preimage = bytes(range(32))
    ciphertext = te.encrypt(fed.public_key, preimage, CONTEXT)
    assert not te.verify_ciphertext(fed.public_key, ciphertext, CONTEXT + b"x")
    assert not te.verify_ciphertext(base_multiply(5), ciphertext, CONTEXT)
    flipped = bytes([ciphertext.masked[0] ^ 1]) + ciphertext.masked[1:]
    mauled = te.Ciphertext(ciphertext.ephemeral, flipped, ciphertext.challenge, ciphertext.response)
    assert not te.verify_ciphertext(fed.public_key, mauled, CONTEXT)
    # Guardians refuse to decrypt a ciphertext re-used under another context (the replay attack).
    with pytest.raises(CryptoError):
        te.create_share(fed.shares[0], fed.public_key, ciphertext, b"attacker contract")
    with pytest.raises(CryptoError):
        te.create_share(fed.shares[0], fed.public_key, mauled, CONTEXT)
    with pytest.raises(CryptoError):
        te.decrypt(
            fed.public_key, mauled, CONTEXT, fed.decryption_shares(ciphertext), fed.public_key_shares, 3
        )
    with pytest.raises(CryptoError):
        te.decrypt_with_secret_key(fed.secret, ciphertext, b"other")
    # A degenerate proof fails verification instead of raising.
    degenerate = te.Ciphertext(ciphertext.ephemeral, ciphertext.masked, 0, 0)
    assert not te.verify_ciphertext(fed.public_key, degenerate, CONTEXT)


def test_encrypt_is_randomised_and_validates_input() -> None:
    public_key = base_multiply(11)
    first = te.encrypt(public_key, b"\x00" * 32, CONTEXT)
    second = te.encrypt(public_key, b"\x00" * 32, CONTEXT)
    assert first != second
    fixed = te.encrypt(public_key, b"\x00" * 32, CONTEXT, ephemeral_secret=42)
    assert fixed == te.encrypt(public_key, b"\x00" * 32, CONTEXT, ephemeral_secret=42)
    with pytest.raises(CryptoError):
        te.encrypt(public_key, b"\x00" * 31, CONTEXT)
    with pytest.raises(CryptoError):
        te.encrypt(public_key, b"\x00" * 32, CONTEXT, ephemeral_secret=0)


@FEW
@given(scalars, preimages)
def test_serialisation_round_trips(secret: int, preimage: bytes) -> None:
    fed = Federation(secret, n=3, t=2)
    ciphertext = te.encrypt(fed.public_key, preimage, CONTEXT)
    assert te.Ciphertext.from_dict(ciphertext.to_dict()) == ciphertext
    assert te.Ciphertext.from_hex(ciphertext.to_hex()) == ciphertext
    assert te.Ciphertext.from_bytes(ciphertext.to_bytes()) == ciphertext
    assert len(ciphertext.to_bytes()) == te.CIPHERTEXT_SIZE
    share = te.create_share(fed.shares[0], fed.public_key, ciphertext, CONTEXT)
    restored = te.DecryptionShare.from_dict(share.to_dict())
    assert restored == share
    assert te.verify_share(fed.public_key_shares[1], te.Ciphertext.from_hex(ciphertext.to_hex()), restored)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: {**d, "masked": d["masked"][:-2]},
        lambda d: {**d, "R": "02" + "00" * 32},
        lambda d: {**d, "e": "ff" * 32},
        lambda d: {k: v for k, v in d.items() if k != "s"},
        lambda d: [d],
    ],
)
def test_ciphertext_from_dict_rejects_malformed(mutate: object) -> None:
    data = te.encrypt(base_multiply(3), b"\x11" * 32, CONTEXT).to_dict()
    with pytest.raises(CryptoError):
        te.Ciphertext.from_dict(mutate(data))  # type: ignore[operator]


def test_binary_and_share_decoding_reject_malformed() -> None:
    ciphertext = te.encrypt(base_multiply(3), b"\x11" * 32, CONTEXT)
    with pytest.raises(CryptoError):
        te.Ciphertext.from_bytes(ciphertext.to_bytes()[:-1])
    with pytest.raises(CryptoError):
        te.Ciphertext.from_hex(ciphertext.to_hex()[:-2] + "zz")
    with pytest.raises(CryptoError):
        te.DecryptionShare.from_dict({"index": 1, "D": generator().to_hex()})
    with pytest.raises(CryptoError):
        te.DecryptionShare.from_dict(
            {"index": -1, "D": generator().to_hex(), "dleq": dleq.Dleq(1, 2).to_dict()}
        )
