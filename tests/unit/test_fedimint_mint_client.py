"""Pure mint client logic: tiers, exact fee balancing, secrets, share combination, transactions."""

from __future__ import annotations

import secrets

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from fedimint_gw.crypto.bls import dealer, tbs
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.errors import InsufficientFunds
from fedimint_gw.fedimint.mint_client import (
    NoteSecrets,
    build_transaction,
    derive_note_secrets,
    exact_outputs,
    finish_note,
    greedy_outputs,
    note_fees,
    note_nonce,
    plan_reissue,
    plan_split,
    represent_amount,
)
from fedimint_gw.fedimint.mint_errors import SharesInsufficient, Unbalanceable
from fedimint_gw.fedimint.mint_types import FeeConsensus, MintClientConfig, SpendableNote

TIERS = tuple(2**i for i in range(20))
FEES = FeeConsensus(100, 1000)
FID = FederationId("ab" * 32)
ROOT = bytes(range(32))


@pytest.fixture(scope="module")
def keys() -> dict[int, tbs.DealerKeys]:
    return {t: tbs.dealer_keys(dealer.seeded_coefficients(3), 4) for t in (1, 2, 4, 8, 16)}


def config_of(keys: dict[int, tbs.DealerKeys], fee: FeeConsensus = FEES) -> MintClientConfig:
    return MintClientConfig(
        {t: k.aggregate_public_key.encode() for t, k in keys.items()},
        fee,
        {p: {t: k.public_key_shares[p].encode() for t, k in keys.items()} for p in range(4)},
        3,
    )


def sign(keys: dict[int, tbs.DealerKeys], secret: NoteSecrets, peer: int) -> bytes:
    return tbs.sign_message(secret.blinded(), keys[secret.amount].secret_key_shares[peer]).encode()


def test_represent_amount_is_binary_and_refuses_what_tiers_cannot_make() -> None:
    assert represent_amount(13, TIERS) == [8, 4, 1]
    assert represent_amount(2**21 + 1, TIERS) == [2**19] * 4 + [1]
    with pytest.raises(Unbalanceable):
        represent_amount(3, (2, 4))


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=10**9))
def test_exact_outputs_add_up_to_the_total_with_their_fees(total: int) -> None:
    found = exact_outputs(total, FEES, TIERS)
    cheapest = 1 + FEES.fee(1)
    if total >= 20 * cheapest:
        assert found is not None
    if found is not None:
        assert sum(a + FEES.fee(a) for a in found) == total
        assert all(a in TIERS for a in found)
    assert sum(a + FEES.fee(a) for a in greedy_outputs(total, FEES, TIERS)) > total - cheapest


def test_nothing_balances_a_total_below_one_note() -> None:
    assert exact_outputs(100, FEES, TIERS) is None
    assert exact_outputs(0, FEES, TIERS) == []


def test_derived_secrets_are_deterministic_and_distinct() -> None:
    a = derive_note_secrets(ROOT, FID, "op", 0, 8)
    assert a.spend_key == derive_note_secrets(ROOT, FID, "op", 0, 8).spend_key
    assert a.blinding_key == derive_note_secrets(ROOT, FID, "op", 0, 64).blinding_key
    others = [
        derive_note_secrets(ROOT, FID, "op", 1, 8),
        derive_note_secrets(ROOT, FID, "op2", 0, 8),
        derive_note_secrets(ROOT, FederationId("cd" * 32), "op", 0, 8),
        derive_note_secrets(bytes(32), FID, "op", 0, 8),
    ]
    assert len({a.spend_key, *(o.spend_key for o in others)}) == 5
    assert len({a.blinding_key, *(o.blinding_key for o in others)}) == 5
    assert "secret" in repr(a) and a.spend_key.hex() not in repr(a)


def test_finish_note_checks_every_share_and_names_the_bad_guardian(keys: dict[int, tbs.DealerKeys]) -> None:
    config = config_of(keys)
    secret = derive_note_secrets(ROOT, FID, "finish", 0, 4)
    shares = {p: sign(keys, secret, p) for p in range(4)}
    done = finish_note(secret, shares, config, 3)
    assert done.bad_peers == ()
    message = tbs.message_from_bytes(note_nonce(done.note))
    assert tbs.verify(message, tbs.Signature.decode(done.note.signature), keys[4].aggregate_public_key)
    # A share made with another guardian's key, or garbage, is named and not used.
    lying = {**shares, 1: shares[2], 3: b"\x00" * 48}
    with pytest.raises(SharesInsufficient, match=r"\[1, 3\]"):
        finish_note(secret, lying, config, 3)
    assert finish_note(secret, {**shares, 1: shares[2]}, config, 3).bad_peers == (1,)
    assert finish_note(secret, {p: shares[p] for p in (0, 2, 3)}, config, 3).note == done.note


SMALL_FEES = FeeConsensus(2, 1000)


def test_a_split_pays_the_amount_and_every_fee_exactly(keys: dict[int, tbs.DealerKeys]) -> None:
    config = config_of(keys, SMALL_FEES)
    notes = [(16, SpendableNote(b"\x01" * 48, secrets.token_bytes(32))) for _ in range(40)]
    plan = plan_split(notes, 37, config)
    total = sum(a for a, _ in plan.inputs)
    fee = sum(SMALL_FEES.fee(a) for a, _ in plan.inputs) + sum(
        SMALL_FEES.fee(a) for a in (*plan.send, *plan.change)
    )
    assert sum(plan.send) == 37
    assert total == 37 + sum(plan.change) + fee
    with pytest.raises(InsufficientFunds):
        plan_split(notes[:2], 37, config)


def test_a_reissue_is_exact_or_refused(keys: dict[int, tbs.DealerKeys]) -> None:
    config = config_of(keys, SMALL_FEES)
    notes = [(16, SpendableNote(b"\x01" * 48, secrets.token_bytes(32))) for _ in range(30)]
    plan = plan_reissue(notes, config)
    assert plan.fee_msat == sum(SMALL_FEES.fee(16) for _ in notes) + sum(
        SMALL_FEES.fee(a) for a in plan.outputs
    )
    assert sum(plan.outputs) + plan.fee_msat == 480
    with pytest.raises(Unbalanceable):
        plan_reissue(notes[:1], config_of(keys, FeeConsensus(16, 0)))


def test_transactions_carry_one_valid_signature_per_input() -> None:
    notes = [(8, SpendableNote(b"\x02" * 48, secrets.token_bytes(32))) for _ in range(3)]
    outputs = [derive_note_secrets(ROOT, FID, "tx", i, 4) for i in range(2)]
    tx = build_transaction(1, notes, outputs, b"\x00" * 8)
    assert [i.module_instance_id for i in tx.inputs] == [1, 1, 1]
    assert tx.signatures_valid([note_nonce(n) for _, n in notes])
    assert not tx.signatures_valid([note_nonce(n) for _, n in reversed(notes)])


def tiered_config(fee: FeeConsensus) -> MintClientConfig:
    """A config with TIERS (fee arithmetic needs only the tiers, not working keys)."""
    return MintClientConfig({t: b"" for t in TIERS}, fee, {}, 3)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1_000, max_value=2**22), st.sampled_from([FEES, FeeConsensus(100, 0)]))
@example(1023, FEES)  # ten notes whose input fees leave 23 msat: too little even when overpaying
def test_note_fees_reissue_is_what_reissuing_a_spends_notes_costs(amount: int, fee: FeeConsensus) -> None:
    config = tiered_config(fee)
    made = [(a, SpendableNote(b"\x01" * 48, bytes(32))) for a in represent_amount(amount, TIERS)]
    fees = note_fees(amount, config)
    try:
        assert fees.reissue == plan_reissue(made, config).fee_msat
    except Unbalanceable:  # no exact outputs and no overpaying: nothing can be reissued
        assert fees.reissue == amount
    try:
        assert note_fees(amount, config, overpay=True).reissue == plan_reissue(made, config, True).fee_msat
    except Unbalanceable:  # the input fees eat all but less than one fresh note's fee
        assert note_fees(amount, config, overpay=True).reissue == amount
    # the spend pays the fees of the notes it makes, of the notes paying for them, and of change
    assert fees.spend >= 2 * sum(fee.fee(a) for a, _ in made)


def test_note_fees_without_mint_fees_are_zero_and_nothing_is_left_of_a_dust_amount() -> None:
    assert note_fees(123_456, tiered_config(FeeConsensus(0, 0))) == (note_fees(0, tiered_config(FEES)))
    assert note_fees(123_456, tiered_config(FeeConsensus(0, 0))).spend == 0
    assert note_fees(150, tiered_config(FEES)).reissue == 150  # its notes' fees eat it all
    assert note_fees(3, MintClientConfig({2: b"", 4: b""}, FEES, {}, 3)).spend == 3  # not representable
