"""Shamir secret sharing: reconstruction from any t of n, in scalars and in the exponent."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedimint_gw.crypto import shamir
from fedimint_gw.crypto.errors import CryptoError, InvalidShareError
from fedimint_gw.crypto.point import base_multiply
from fedimint_gw.crypto.scalar import N

FEW = settings(max_examples=25, deadline=None)
scalars = st.integers(min_value=1, max_value=N - 1)


@st.composite
def sharings(draw: st.DrawFn) -> tuple[int, int, int, list[int]]:
    """(secret, n, t, a random t-subset of the indices 1..n)."""
    n = draw(st.integers(min_value=1, max_value=7))
    t = draw(st.integers(min_value=1, max_value=n))
    subset = draw(st.lists(st.integers(1, n), min_size=t, max_size=t, unique=True))
    return draw(scalars), n, t, subset


@FEW
@given(sharings())
def test_any_t_of_n_reconstruct_the_secret(case: tuple[int, int, int, list[int]]) -> None:
    secret, n, t, subset = case
    shares = shamir.split(secret, n, t)
    assert [share.index for share in shares] == list(range(1, n + 1))
    by_index = {share.index: share for share in shares}
    chosen = [by_index[i] for i in subset]
    assert shamir.combine_scalars(chosen) == secret
    assert shamir.combine_scalars(shares) == secret  # more than t is fine too


@FEW
@given(sharings(), scalars)
def test_any_t_of_n_combine_points(case: tuple[int, int, int, list[int]], b: int) -> None:
    secret, n, t, subset = case
    shares = shamir.split(secret, n, t)
    base = base_multiply(b)
    point_shares = [shamir.PointShare(share.index, base * share.value) for share in shares]
    chosen = [point_shares[i - 1] for i in subset]
    assert shamir.combine_points(chosen) == base * secret
    public_shares = [share.public() for share in shares]
    assert shamir.combine_points([public_shares[i - 1] for i in subset]) == base_multiply(secret)
    assert shamir.verify_public_shares(base_multiply(secret), public_shares, t)


@FEW
@given(scalars, st.integers(min_value=2, max_value=6), st.data())
def test_fewer_than_t_shares_give_a_wrong_result(secret: int, t: int, data: st.DataObject) -> None:
    n = data.draw(st.integers(min_value=t, max_value=7))
    shares = shamir.split(secret, n, t)
    subset = data.draw(
        st.lists(st.sampled_from(shares), min_size=1, max_size=t - 1, unique_by=lambda s: s.index)
    )
    assert shamir.combine_scalars(subset) != secret
    assert shamir.combine_points([share.public() for share in subset]) != base_multiply(secret)


def test_every_subset_of_a_3_of_4_sharing() -> None:
    secret = 0xC0FFEE
    shares = shamir.split(secret, 4, 3)
    for subset in itertools.combinations(shares, 3):
        assert shamir.combine_scalars(list(subset)) == secret
    for pair in itertools.combinations(shares, 2):
        assert shamir.combine_scalars(list(pair)) != secret


def test_threshold_one_is_replication() -> None:
    shares = shamir.split(42, 3, 1)
    assert all(share.value == 42 for share in shares)


def test_lagrange_coefficients_sum_to_one() -> None:
    weights = shamir.lagrange_coefficients([1, 3, 4])
    assert sum(weights.values()) % N == 1
    assert shamir.lagrange_coefficients([2], at=0) == {2: 1}


@pytest.mark.parametrize("indices", [[], [1, 1], [0, 1], [N, 1], [-1, 2]])
def test_lagrange_rejects_bad_indices(indices: list[int]) -> None:
    with pytest.raises(CryptoError):
        shamir.lagrange_coefficients(indices)


@pytest.mark.parametrize(("secret", "n", "t"), [(0, 3, 2), (N, 3, 2), (1, 3, 4), (1, 3, 0), (1, 0, 0)])
def test_split_rejects_bad_parameters(secret: int, n: int, t: int) -> None:
    with pytest.raises(CryptoError):
        shamir.split(secret, n, t)


def test_require_threshold() -> None:
    shamir.require_threshold([1, 2, 3], 3)
    with pytest.raises(CryptoError):
        shamir.require_threshold([1, 2], 3)
    with pytest.raises(CryptoError):
        shamir.require_threshold([1, 2], 0)
    with pytest.raises(InvalidShareError) as info:
        shamir.require_threshold([1, 2, 2], 2)
    assert info.value.index == 2


def test_verify_public_shares_detects_inconsistency() -> None:
    secret = 1234567
    shares = shamir.split(secret, 4, 3)
    public = [share.public() for share in shares]
    public_key = base_multiply(secret)
    assert shamir.verify_public_shares(public_key, public, 3)
    assert not shamir.verify_public_shares(public_key, public, 2)  # degree is too high for t = 2
    assert not shamir.verify_public_shares(base_multiply(secret + 1), public, 3)
    tampered = [*public[:3], shamir.PointShare(4, public[3].point + base_multiply(1))]
    assert not shamir.verify_public_shares(public_key, tampered, 3)
    assert not shamir.verify_public_shares(public_key, public[:2], 3)
    assert not shamir.verify_public_shares(public_key, [*public, public[0]], 3)


@FEW
@given(st.integers(1, 1000), st.integers(0, N - 1), scalars)
def test_share_serialisation_round_trip(index: int, value: int, p: int) -> None:
    share = shamir.Share(index, value)
    assert shamir.Share.from_dict(share.to_dict()) == share
    assert "value" not in repr(share)
    point_share = shamir.PointShare(index, base_multiply(p))
    assert shamir.PointShare.from_dict(point_share.to_dict()) == point_share


@pytest.mark.parametrize(
    "data",
    [
        {"index": 0, "value": "00" * 32},
        {"index": True, "value": "00" * 32},
        {"index": "1", "value": "00" * 32},
        {"index": 1},
        {"index": 1, "value": "ff" * 32},
        "share",
    ],
)
def test_share_from_dict_rejects_malformed(data: object) -> None:
    with pytest.raises(CryptoError):
        shamir.Share.from_dict(data)
    with pytest.raises(CryptoError):
        shamir.PointShare.from_dict(data)
