"""The gateway's client-side ecash against guardians simulated with the crypto primitives."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedimint_gw.crypto import bdhke
from fedimint_gw.crypto.point import base_multiply
from fedimint_gw.crypto.scalar import random_scalar
from fedimint_gw.crypto.shamir import split
from fedimint_gw.crypto.threshold_bdhke import sign_share
from fedimint_gw.errors import FederationUnreachable
from fedimint_gw.federation.ecash import (
    MintKeys,
    Note,
    denominations_for,
    finish_outputs,
    new_outputs,
    select_notes,
)

DENOMS = [1, 2, 4, 8, 16, 32, 64, 128]


def _mint(n: int = 4, t: int = 3) -> tuple[dict[int, int], dict[int, dict[int, object]], MintKeys]:
    secrets_: dict[int, int] = {}
    key_shares: dict[int, dict[int, object]] = {}
    agg, pub_shares = {}, {}
    for d in DENOMS:
        k = random_scalar()
        secrets_[d] = k
        shares = split(k, n, t)
        key_shares[d] = {s.index: s for s in shares}
        agg[d] = base_multiply(k)
        pub_shares[d] = {s.index: s.public().point for s in shares}
    return secrets_, key_shares, MintKeys(t, agg, pub_shares)


def test_denominations_sum_to_amount() -> None:
    assert denominations_for(13) == [8, 4, 1]
    assert sum(denominations_for(1_000_001)) == 1_000_001
    assert denominations_for(0) == []


def test_t_of_n_shares_make_valid_notes_and_a_byzantine_guardian_is_named() -> None:
    k, key_shares, keys = _mint()
    outputs = new_outputs(13)
    answers = {
        i: [sign_share(key_shares[o.amount_msat][i], o.blinded).to_dict() for o in outputs] for i in (1, 2, 4)
    }
    # Guardian 3 answers with shares made by the wrong key.
    answers[3] = [sign_share(key_shares[o.amount_msat][1], o.blinded).to_dict() for o in outputs]
    notes, bad = finish_outputs(outputs, answers, keys)
    assert bad == [3]
    assert sum(n.amount_msat for n in notes) == 13
    for note in notes:
        assert bdhke.verify(
            k[note.amount_msat], bytes.fromhex(note.secret), bdhke.Point.from_hex(note.signature)
        )


def test_below_threshold_valid_shares_is_an_error() -> None:
    _, key_shares, keys = _mint()
    outputs = new_outputs(5)
    answers = {
        i: [sign_share(key_shares[o.amount_msat][i], o.blinded).to_dict() for o in outputs] for i in (1, 2)
    }
    answers[3] = [{"garbage": True}]
    with pytest.raises(FederationUnreachable, match=r"guardian\(s\) \[3\]"):
        finish_outputs(outputs, answers, keys)


def test_select_notes_covers_amount_without_waste() -> None:
    notes = [Note(d, "00" * 32, "02" + "11" * 32) for d in (1, 2, 8, 8, 32)]
    chosen = select_notes(notes, 10)
    assert sum(n.amount_msat for n in chosen) >= 10
    assert sum(n.amount_msat for n in chosen) == 10  # 8 + 2: exact, no change needed
    assert sum(n.amount_msat for n in select_notes(notes, 33)) == 33  # 32 + 1
    assert sum(n.amount_msat for n in select_notes(notes, 44)) == 48  # 32 + 8 + 8: no exact subset
    with pytest.raises(ValueError):
        select_notes(notes, 1000)


@given(st.lists(st.sampled_from(DENOMS), min_size=1, max_size=20), st.integers(1, 1000))
def test_select_notes_always_covers(denoms: list[int], amount: int) -> None:
    notes = [Note(d, f"{i:064x}", "02" + "11" * 32) for i, d in enumerate(denoms)]
    if sum(denoms) < amount:
        with pytest.raises(ValueError):
            select_notes(notes, amount)
        return
    chosen = select_notes(notes, amount)
    assert sum(n.amount_msat for n in chosen) >= amount
    assert len({n.secret for n in chosen}) == len(chosen)
