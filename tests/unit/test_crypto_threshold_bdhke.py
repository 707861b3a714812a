"""Threshold BDHKE: guardians sign with key shares, the wallet verifies and combines."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedimint_gw.crypto import bdhke, dleq, shamir, threshold_bdhke
from fedimint_gw.crypto.errors import CryptoError, InvalidShareError
from fedimint_gw.crypto.point import base_multiply, generator
from fedimint_gw.crypto.scalar import N

FEW = settings(max_examples=25, deadline=None)
scalars = st.integers(min_value=1, max_value=N - 1)


@FEW
@given(scalars, st.binary(max_size=32), st.lists(st.integers(1, 4), min_size=3, max_size=3, unique=True))
def test_any_three_of_four_guardians_produce_a_valid_note(key: int, secret: bytes, subset: list[int]) -> None:
    shares = shamir.split(key, 4, 3)
    public_key_shares = {share.index: share.public().point for share in shares}
    blinding = bdhke.blind(secret)
    signature_shares = [threshold_bdhke.sign_share(shares[i - 1], blinding.blinded) for i in subset]
    for share in signature_shares:
        assert threshold_bdhke.verify_share(public_key_shares[share.index], blinding.blinded, share)
    blind_signature = threshold_bdhke.combine_shares(blinding.blinded, signature_shares, public_key_shares, 3)
    assert blind_signature == bdhke.sign(key, blinding.blinded)
    note = bdhke.unblind(blind_signature, blinding.blinding_factor, base_multiply(key))
    assert bdhke.verify(key, secret, note)


def test_bad_share_is_rejected_naming_the_guardian() -> None:
    key = 987654321
    shares = shamir.split(key, 4, 3)
    public_key_shares = {share.index: share.public().point for share in shares}
    blinded = bdhke.blind(b"note").blinded
    good = [threshold_bdhke.sign_share(share, blinded) for share in shares]

    # Guardian 2 signs with a key that is not its share (its proof is honest for that key).
    impostor = threshold_bdhke.sign_share(shamir.Share(2, 12345), blinded)
    assert not threshold_bdhke.verify_share(public_key_shares[2], blinded, impostor)
    with pytest.raises(InvalidShareError) as info:
        threshold_bdhke.combine_shares(blinded, [good[0], impostor, good[2]], public_key_shares, 3)
    assert info.value.index == 2

    # Guardian 3's signature point is tampered with while keeping its proof.
    tampered = threshold_bdhke.BlindSignatureShare(3, good[2].signature + generator(), good[2].proof)
    with pytest.raises(InvalidShareError) as info:
        threshold_bdhke.combine_shares(blinded, [good[0], good[1], tampered], public_key_shares, 3)
    assert info.value.index == 3

    # Guardian 4 replays guardian 1's valid share under its own index.
    replayed = threshold_bdhke.BlindSignatureShare(4, good[0].signature, good[0].proof)
    with pytest.raises(InvalidShareError) as info:
        threshold_bdhke.combine_shares(blinded, [good[1], good[2], replayed], public_key_shares, 3)
    assert info.value.index == 4

    # A share for another blinded message does not verify for this one.
    other = threshold_bdhke.sign_share(shares[0], bdhke.blind(b"other").blinded)
    assert not threshold_bdhke.verify_share(public_key_shares[1], blinded, other)

    # Unknown index, duplicates and too few shares.
    unknown = threshold_bdhke.sign_share(shamir.Share(9, 5), blinded)
    with pytest.raises(InvalidShareError) as info:
        threshold_bdhke.combine_shares(blinded, [*good[:2], unknown], public_key_shares, 3)
    assert info.value.index == 9
    with pytest.raises(InvalidShareError):
        threshold_bdhke.combine_shares(blinded, [good[0], good[0], good[1]], public_key_shares, 3)
    with pytest.raises(CryptoError):
        threshold_bdhke.combine_shares(blinded, good[:2], public_key_shares, 3)

    # The honest shares still work, in any order.
    combined = threshold_bdhke.combine_shares(blinded, list(reversed(good)), public_key_shares, 3)
    assert combined == bdhke.sign(key, blinded)


def test_signature_share_serialisation_round_trip() -> None:
    share = threshold_bdhke.sign_share(shamir.Share(3, 777), bdhke.blind(b"x").blinded)
    data = share.to_dict()
    assert set(data) == {"index", "C_", "dleq"}
    assert threshold_bdhke.BlindSignatureShare.from_dict(data) == share
    with pytest.raises(CryptoError):
        threshold_bdhke.BlindSignatureShare.from_dict({**data, "dleq": {"e": "00"}})
    with pytest.raises(CryptoError):
        threshold_bdhke.BlindSignatureShare.from_dict({**data, "C_": "02" + "00" * 32})
    with pytest.raises(CryptoError):
        threshold_bdhke.BlindSignatureShare(0, share.signature, dleq.Dleq(1, 1))
