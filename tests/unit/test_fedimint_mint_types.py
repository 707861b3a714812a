"""Mint module types, transactions, submission outcomes and OOB notes."""

from __future__ import annotations

import base64
import hashlib

import pytest
from coincurve import PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from fedimint_gw.domain.ids import FederationId
from fedimint_gw.fedimint.encoding import Err, Ok, UnknownVariant, decode_whole, encode
from fedimint_gw.fedimint.errors import DecodeError
from fedimint_gw.fedimint.mint_types import (
    MintInputV0,
    MintOutputOutcomeV0,
    MintOutputV0,
    Note,
    SpendableNote,
    read_mint_input,
    read_mint_output,
    read_mint_output_outcome,
    write_mint_input,
    write_mint_output,
    write_mint_output_outcome,
)
from fedimint_gw.fedimint.oob import (
    ApiSecretPart,
    FederationIdPrefixPart,
    InvitePart,
    NotesPart,
    OOBNotes,
    oob_notes_from_bytes,
    parse_oob_notes,
)
from fedimint_gw.fedimint.transaction import (
    ModuleItem,
    OutPoint,
    Transaction,
    TransactionError,
    TransactionSubmissionOutcome,
    tx_hash,
)

NONCE = bytes.fromhex("02" + "aa" * 32)
SIG = bytes([0x80]) + b"\x11" * 47
FID = FederationId("bea7ff4116f2b1d324c7b5d699cce4ac7408cee41db2c88027e21b76fff3b9f4")


def test_mint_input_v0_layout() -> None:
    """MintInput::V0 { amount, note: Note { nonce (33), signature (48) } } in an enum body."""
    value = MintInputV0(1024, Note(NONCE, SIG))
    data = encode(lambda w: write_mint_input(w, value))
    assert data == bytes([0, 3 + 33 + 48]) + bytes.fromhex("fd0400") + NONCE + SIG
    assert decode_whole(data, read_mint_input) == value


def test_mint_output_and_outcome_layout() -> None:
    out = MintOutputV0(2, SIG)
    data = encode(lambda w: write_mint_output(w, out))
    assert data == bytes([0, 49, 2]) + SIG
    assert decode_whole(data, read_mint_output) == out
    outcome = MintOutputOutcomeV0(SIG)
    data = encode(lambda w: write_mint_output_outcome(w, outcome))
    assert data == bytes([0, 48]) + SIG
    assert decode_whole(data, read_mint_output_outcome) == outcome


def test_unknown_mint_versions_are_kept() -> None:
    data = encode(lambda w: w.variant(1, b"v1 body"))
    value = decode_whole(data, read_mint_input)
    assert value == UnknownVariant(1, b"v1 body")
    assert encode(lambda w: write_mint_input(w, value)) == data


def test_mint_input_with_short_signature_is_refused() -> None:
    data = bytes([0, 3 + 33 + 47]) + bytes.fromhex("fd0400") + NONCE + SIG[:47]
    with pytest.raises(DecodeError):
        decode_whole(data, read_mint_input)


def _signed_tx() -> tuple[Transaction, list[bytes]]:
    keys = [PrivateKey(bytes([i + 1]) * 32) for i in range(2)]
    inputs = [
        ModuleItem(
            1, encode(lambda w, k=k: write_mint_input(w, MintInputV0(8, Note(k.public_key.format(), SIG))))
        )
        for k in keys
    ]
    outputs = [ModuleItem(1, encode(lambda w: write_mint_output(w, MintOutputV0(16, SIG))))]
    tx = Transaction.signed(inputs, outputs, b"\x07" * 8, [k.secret for k in keys])
    return tx, [k.public_key.format() for k in keys]


def test_txid_is_sha256_of_inputs_outputs_nonce() -> None:
    tx, _ = _signed_tx()
    expected = hashlib.sha256(
        encode(lambda w: w.vec(tx.inputs, lambda ww, i: i.write(ww)))
        + encode(lambda w: w.vec(tx.outputs, lambda ww, o: o.write(ww)))
        + tx.nonce
    ).digest()
    assert tx.txid() == expected == tx_hash(tx.inputs, tx.outputs, tx.nonce)


def test_transaction_layout_and_round_trip() -> None:
    tx, _ = _signed_tx()
    data = tx.to_bytes()
    # inputs: count 2, each = module id 1, length, body
    assert data[0] == 2 and data[1] == 1
    assert data.endswith(
        bytes([0, 1 + 2 * 64, 2]) + b"".join(s for s in tx.signatures if isinstance(s, bytes))
    )
    assert Transaction.from_bytes(data) == tx
    assert Transaction.from_hex(tx.to_hex()) == tx


def test_signatures_verify_against_input_keys() -> None:
    tx, pubkeys = _signed_tx()
    assert tx.signatures_valid(pubkeys)
    assert not tx.signatures_valid(list(reversed(pubkeys)))
    assert not tx.signatures_valid(pubkeys[:1])
    other = Transaction(tx.inputs, tx.outputs, b"\x08" * 8, tx.signatures)
    assert not other.signatures_valid(pubkeys)


def test_unknown_signature_scheme_is_kept_but_not_valid() -> None:
    tx, pubkeys = _signed_tx()
    odd = Transaction(tx.inputs, tx.outputs, tx.nonce, UnknownVariant(1, b"x"))
    assert Transaction.from_bytes(odd.to_bytes()) == odd
    assert not odd.signatures_valid(pubkeys)


def test_transaction_refuses_truncation_and_trailing_bytes() -> None:
    tx, _ = _signed_tx()
    data = tx.to_bytes()
    with pytest.raises(DecodeError):
        Transaction.from_bytes(data[:-1])
    with pytest.raises(DecodeError, match="trailing"):
        Transaction.from_bytes(data + b"\x00")


def test_out_point() -> None:
    point = OutPoint(b"\x01" * 32, 300)
    data = encode(point.write)
    assert data == b"\x01" * 32 + bytes.fromhex("fd012c")
    assert decode_whole(data, OutPoint.read) == point
    assert point.to_json() == {"txid": "01" * 32, "out_idx": 300}


def test_submission_outcomes() -> None:
    ok = TransactionSubmissionOutcome(Ok(b"\x05" * 32))
    assert ok.to_hex() == "01" + "05" * 32 and ok.accepted
    assert TransactionSubmissionOutcome.from_hex(ok.to_hex()) == ok
    err = TransactionSubmissionOutcome(Err(TransactionError.unbalanced(10, 8, 1)))
    assert err.to_hex() == "00" + "00" + "03" + "0a0801"
    back = TransactionSubmissionOutcome.from_hex(err.to_hex())
    assert back == err and not back.accepted
    assert isinstance(back.result, Err) and "unbalanced" in back.result.error.describe()
    for e in (
        TransactionError.invalid_witness_length(),
        TransactionError.invalid_signature("a", "b", "c", "d"),
        TransactionError.input_error(1, b"\x00\x01"),
        TransactionError.output_error(2, b""),
        TransactionError(9, b"?"),
    ):
        outcome = TransactionSubmissionOutcome(Err(e))
        assert TransactionSubmissionOutcome.from_hex(outcome.to_hex()) == outcome


def _notes() -> dict[int, tuple[SpendableNote, ...]]:
    return {
        1: (SpendableNote(SIG, b"\x01" * 32),),
        4: (SpendableNote(SIG, b"\x02" * 32), SpendableNote(SIG, b"\x03" * 32)),
    }


def test_oob_notes_round_trip_both_alphabets() -> None:
    notes = OOBNotes.new(FID, _notes(), peer_apis=((0, "wss://fedimintd.mplsfed.foo/"),), api_secret="s")
    assert notes.total_msat == 9
    assert notes.federation_id_prefix == FID.raw[:4]
    for text in (notes.encode(), notes.encode(url_safe=False)):
        assert parse_oob_notes(text) == notes
    assert parse_oob_notes(notes.encode()[:20] + "\n " + notes.encode()[20:]) == notes


def test_oob_notes_layout() -> None:
    notes = OOBNotes.new(FID, {1: (SpendableNote(SIG, b"\x01" * 32),)})
    data = notes.to_bytes()
    prefix_part = bytes([1, 4]) + FID.raw[:4]
    notes_body = bytes([1, 1, 1]) + SIG + b"\x01" * 32
    assert data == bytes([2]) + prefix_part + bytes([0, len(notes_body)]) + notes_body
    assert base64.urlsafe_b64decode(notes.encode()) == data


def test_oob_invariants() -> None:
    notes_part = NotesPart(_notes())
    with pytest.raises(DecodeError, match="notes"):
        OOBNotes((FederationIdPrefixPart(FID.raw[:4]),))
    with pytest.raises(DecodeError, match="federation id"):
        OOBNotes((notes_part, ApiSecretPart("x")))
    with pytest.raises(DecodeError, match="inconsistent"):
        OOBNotes((notes_part, FederationIdPrefixPart(b"\x00" * 4), InvitePart(((0, "ws://a/"),), FID)))
    with pytest.raises(DecodeError, match="API endpoints"):
        OOBNotes((notes_part, InvitePart((), FID)))
    with pytest.raises(DecodeError, match="empty"):
        OOBNotes((NotesPart({}), FederationIdPrefixPart(FID.raw[:4])))
    only_invite = OOBNotes((notes_part, InvitePart(((0, "ws://a/"),), FID)))
    assert only_invite.federation_id_prefix == FID.raw[:4]


def test_oob_unknown_parts_kept() -> None:
    notes = OOBNotes((*OOBNotes.new(FID, _notes()).parts, UnknownVariant(9, b"later")))
    assert oob_notes_from_bytes(notes.to_bytes()) == notes


@pytest.mark.parametrize("bad", ["", "!!!!", "AAA", 5, "AAAA"])
def test_oob_text_refusals(bad: object) -> None:
    with pytest.raises(DecodeError):
        parse_oob_notes(bad)


@settings(max_examples=40)
@given(
    st.dictionaries(
        st.integers(1, 1 << 40),
        st.lists(
            st.tuples(st.binary(min_size=48, max_size=48), st.binary(min_size=32, max_size=32)),
            min_size=1,
            max_size=3,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_oob_round_trip(raw: dict[int, list[tuple[bytes, bytes]]]) -> None:
    notes = {a: tuple(SpendableNote(s, k) for s, k in items) for a, items in sorted(raw.items())}
    oob = OOBNotes.new(FID, notes)
    assert parse_oob_notes(oob.encode()) == oob
    assert oob.notes == notes
