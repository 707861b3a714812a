"""LNv2 protocol types: consensus encodings by hand from the upstream field orders, serde JSON
forms, the tpe ciphertext inside a contract against tests/unit/vectors/tpe.json, contract ids,
forfeit and invoice-auth signatures, and the full decryption path on the vector keyset.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from fedimint_gw.crypto.bls import tpe
from fedimint_gw.crypto.bls.dealer import seeded_coefficients
from fedimint_gw.fedimint.encoding import UnknownVariant, encode
from fedimint_gw.fedimint.errors import DecodeError
from fedimint_gw.fedimint.lnv2 import gateway_api as api
from fedimint_gw.fedimint.lnv2 import items
from fedimint_gw.fedimint.lnv2.contracts import (
    ContractTerms,
    ImageKind,
    IncomingContract,
    OutgoingContract,
    PaymentImage,
)
from fedimint_gw.fedimint.lnv2.keys import public_key_of, sign_schnorr
from fedimint_gw.fedimint.transaction import OutPoint

VECTORS = json.loads((Path(__file__).parent / "vectors" / "tpe.json").read_text())
CASE: dict[str, Any] = VECTORS["cases"][0]

CLAIM_SK = bytes([1]) * 32
REFUND_SK = bytes([2]) * 32
EPHEMERAL_SK = bytes([3]) * 32
PREIMAGE = bytes([42]) * 32


def terms(amount: int = 1000, expiration: int = 500) -> ContractTerms:
    return ContractTerms(
        payment_image=PaymentImage.of_hash(hashlib.sha256(PREIMAGE).digest()),
        amount=amount,
        expiration=expiration,
        claim_pk=public_key_of(CLAIM_SK),
        refund_pk=public_key_of(REFUND_SK),
        ephemeral_pk=public_key_of(EPHEMERAL_SK),
    )


def vector_ciphertext() -> tpe.CipherText:
    return tpe.CipherText.decode(bytes.fromhex(CASE["ciphertext_consensus_hex"]))


def test_outgoing_contract_encoding_by_hand() -> None:
    t = terms()
    expected = (
        bytes([0, 32])  # PaymentImage::Hash: variant 0, body length 32
        + hashlib.sha256(PREIMAGE).digest()
        + bytes.fromhex("fd03e8")  # amount 1000 msat (BigSize)
        + bytes.fromhex("fd01f4")  # expiration 500
        + public_key_of(CLAIM_SK)
        + public_key_of(REFUND_SK)
        + public_key_of(EPHEMERAL_SK)
    )
    contract = OutgoingContract(t)
    assert contract.to_bytes() == expected
    assert contract.contract_id() == hashlib.sha256(expected).digest()
    assert contract.forfeit_message() == contract.contract_id()
    assert OutgoingContract.from_bytes(expected) == contract


def test_incoming_contract_encoding_carries_the_vector_ciphertext() -> None:
    contract = IncomingContract(terms(), vector_ciphertext())
    data = contract.to_bytes()
    assert data == encode(contract.commitment.write) + bytes.fromhex(CASE["ciphertext_consensus_hex"])
    assert contract.contract_id() == hashlib.sha256(data).digest()
    assert IncomingContract.from_bytes(data) == contract
    # serde JSON: the ciphertext exactly as the crates print it
    as_json = contract.to_json()
    assert as_json["ciphertext"] == CASE["ciphertext_serde_json"]
    assert IncomingContract.from_json(json.loads(json.dumps(as_json))) == contract
    # the vector was bound to another commitment: it does not verify against this one
    assert not contract.verify()


def test_payment_image_point_encoding_and_json() -> None:
    point = public_key_of(PREIMAGE)
    image = PaymentImage(ImageKind.POINT, point)
    assert encode(image.write) == bytes([1, 33]) + point
    assert image.to_json() == {"Point": point.hex()}
    assert PaymentImage.from_json({"Point": point.hex()}) == image
    assert image.matches(PREIMAGE)
    assert not image.matches(bytes(32))  # not a secret key at all
    assert not image.matches(bytes([43]) * 32)


def test_contract_json_shape() -> None:
    t = terms()
    assert OutgoingContract(t).to_json() == {
        "payment_image": {"Hash": hashlib.sha256(PREIMAGE).hexdigest()},
        "amount": 1000,
        "expiration": 500,
        "claim_pk": public_key_of(CLAIM_SK).hex(),
        "refund_pk": public_key_of(REFUND_SK).hex(),
        "ephemeral_pk": public_key_of(EPHEMERAL_SK).hex(),
    }


@pytest.mark.parametrize(
    "mutate",
    [
        lambda j: j.update(amount=-1),
        lambda j: j.update(amount=True),
        lambda j: j.update(amount=2**64),
        lambda j: j.update(claim_pk="02" + "00" * 32),  # not on the curve
        lambda j: j.update(refund_pk="04" + "11" * 32),
        lambda j: j.update(payment_image={"Hash": "00" * 31}),
        lambda j: j.update(payment_image={"Hash": "00" * 32, "Point": "00"}),
        lambda j: j.update(payment_image={"Preimage": "00" * 32}),
        lambda j: j.pop("ephemeral_pk"),
    ],
)
def test_bad_contract_json_is_a_decode_error(mutate: Any) -> None:
    data = OutgoingContract(terms()).to_json()
    mutate(data)
    with pytest.raises(DecodeError):
        OutgoingContract.from_json(data)


def test_bad_encodings_are_refused() -> None:
    good = OutgoingContract(terms()).to_bytes()
    with pytest.raises(DecodeError):
        OutgoingContract.from_bytes(good + b"\x00")
    with pytest.raises(DecodeError):
        OutgoingContract.from_bytes(bytes([2, 32]) + good[2:])  # unknown PaymentImage variant
    bad_point = IncomingContract(terms(), vector_ciphertext()).to_bytes()
    with pytest.raises(DecodeError):
        IncomingContract.from_bytes(bad_point[:-96] + bytes(96))  # signature not a G2 point


def test_inputs_and_outputs_encode_and_round_trip() -> None:
    outpoint = OutPoint(bytes([9]) * 32, 3)
    claim = items.OutgoingInput(outpoint, items.OutgoingWitness(items.WitnessKind.CLAIM, PREIMAGE))
    data = items.input_bytes(claim)
    inner = bytes([0, 32 + 1 + 2 + 32]) + outpoint.txid + bytes([3]) + bytes([0, 32]) + PREIMAGE
    assert data == bytes([0, len(inner)]) + inner
    assert items.input_from_bytes(data) == claim
    refund = items.OutgoingInput(outpoint, items.OutgoingWitness(items.WitnessKind.REFUND))
    assert items.input_bytes(refund)[-2:] == bytes([1, 0])
    assert items.input_from_bytes(items.input_bytes(refund)) == refund
    sig = sign_schnorr(CLAIM_SK, bytes(32))
    cancel = items.OutgoingInput(outpoint, items.OutgoingWitness(items.WitnessKind.CANCEL, sig))
    assert items.input_from_bytes(items.input_bytes(cancel)) == cancel
    agg_dk = tpe.AggregateDecryptionKey.decode(bytes.fromhex(CASE["agg_dk_g1"]))
    incoming = items.IncomingInput(outpoint, agg_dk)
    assert items.input_bytes(incoming).endswith(bytes.fromhex(CASE["agg_dk_g1"]))
    assert items.input_from_bytes(items.input_bytes(incoming)) == incoming
    # a future input version survives byte for byte
    unknown = items.input_from_bytes(bytes([1, 2, 0xAA, 0xBB]))
    assert unknown == UnknownVariant(1, bytes([0xAA, 0xBB]))
    assert items.input_bytes(unknown) == bytes([1, 2, 0xAA, 0xBB])
    out = OutgoingContract(terms())
    assert items.output_bytes(out)[:4] == bytes([0, len(out.to_bytes()) + 2, 0, len(out.to_bytes())])
    assert items.output_from_bytes(items.output_bytes(out)) == out
    inc = IncomingContract(terms(), vector_ciphertext())
    assert items.output_from_bytes(items.output_bytes(inc)) == inc


def test_witness_sizes_are_checked() -> None:
    with pytest.raises(DecodeError):
        items.OutgoingWitness(items.WitnessKind.CLAIM, bytes(31))
    with pytest.raises(DecodeError):
        items.OutgoingWitness(items.WitnessKind.REFUND, bytes(1))


def test_invoice_auth_message_is_the_consensus_hash_of_the_invoice_enum() -> None:
    bolt11 = "lnbcrt10n1pexample"
    encoded = bytes([0, 1 + len(bolt11), len(bolt11)]) + bolt11.encode()
    assert items.invoice_bytes(bolt11) == encoded
    assert items.invoice_auth_message(bolt11) == hashlib.sha256(encoded).digest()
    assert items.invoice_auth_message(bolt11.upper()) == items.invoice_auth_message(bolt11)


def test_forfeit_and_auth_signatures() -> None:
    contract = OutgoingContract(terms())
    forfeit = sign_schnorr(CLAIM_SK, contract.forfeit_message())
    assert contract.verify_forfeit_signature(forfeit)
    assert not contract.verify_forfeit_signature(sign_schnorr(REFUND_SK, contract.forfeit_message()))
    message = items.invoice_auth_message("lnbcrt1")
    auth = sign_schnorr(REFUND_SK, message)
    assert contract.verify_invoice_auth(message, auth)
    assert not contract.verify_invoice_auth(items.invoice_auth_message("lnbcrt2"), auth)
    assert not contract.verify_invoice_auth(message, sign_schnorr(CLAIM_SK, message))


def test_receive_decryption_on_the_vector_keyset() -> None:
    keys = tpe.dealer_keys(seeded_coefficients(3), 4)
    assert keys.aggregate_public_key.encode().hex() == VECTORS["keysets"][0]["agg_pk_g1"]
    contract = IncomingContract.create(keys.aggregate_public_key, bytes([7]) * 32, PREIMAGE, terms())
    assert contract.verify()
    shares = {p: tpe.create_dk_share(keys.secret_key_shares[p], contract.ciphertext) for p in range(4)}
    for p, share in shares.items():
        assert contract.verify_dk_share(keys.public_key_shares[p], share)
    assert not contract.verify_dk_share(keys.public_key_shares[0], shares[1])
    agg = tpe.aggregate_dk_shares({p: shares[p] for p in (0, 2, 3)})
    assert contract.verify_agg_dk(keys.aggregate_public_key, agg)
    assert contract.decrypt(agg) == PREIMAGE
    # a ciphertext encrypting something else than the hash's preimage decrypts to None (refund)
    wrong = IncomingContract.create(keys.aggregate_public_key, bytes([7]) * 32, bytes([1]) * 32, terms())
    wrong_agg = tpe.aggregate_dk_shares(
        {p: tpe.create_dk_share(keys.secret_key_shares[p], wrong.ciphertext) for p in (0, 1, 2)}
    )
    assert wrong.verify_agg_dk(keys.aggregate_public_key, wrong_agg)
    assert wrong.decrypt(wrong_agg) is None
    # a ciphertext moved to another commitment no longer verifies
    moved = IncomingContract(terms(amount=1001), contract.ciphertext)
    assert not moved.verify()
    assert not moved.verify_dk_share(keys.public_key_shares[0], shares[0])


def test_gateway_api_payloads() -> None:
    fed = bytes([5]) * 32
    incoming = IncomingContract(terms(), vector_ciphertext())
    body = {
        "federation_id": fed.hex(),
        "contract": incoming.to_json(),
        "amount": 1000,
        "description": {"Direct": "coffee"},
        "expiry_secs": 3600,
    }
    parsed = api.CreateBolt11InvoicePayload.from_json(body)
    assert parsed.contract == incoming and parsed.amount == 1000
    assert parsed.to_json() == body
    with pytest.raises(DecodeError):
        api.CreateBolt11InvoicePayload.from_json({**body, "description": "coffee"})
    with pytest.raises(DecodeError):
        api.CreateBolt11InvoicePayload.from_json({**body, "expiry_secs": 2**32})
    outgoing = OutgoingContract(terms())
    send = {
        "federation_id": fed.hex(),
        "outpoint": {"txid": "ab" * 32, "out_idx": 0},
        "contract": outgoing.to_json(),
        "invoice": {"Bolt11": "lnbcrt1"},
        "auth": sign_schnorr(REFUND_SK, items.invoice_auth_message("lnbcrt1")).hex(),
    }
    sp = api.SendPaymentPayload.from_json(send)
    assert sp.to_json() == send
    assert sp.contract.verify_invoice_auth(items.invoice_auth_message(sp.bolt11), sp.auth)
    with pytest.raises(DecodeError):
        api.SendPaymentPayload.from_json({**send, "invoice": "lnbcrt1"})
    paid = api.SendOutcome(api.SendOutcomeKind.PAID, PREIMAGE)
    assert paid.to_json() == {"Ok": list(PREIMAGE)}
    assert api.SendOutcome.from_json(paid.to_json()) == paid
    forfeit = api.SendOutcome(api.SendOutcomeKind.FORFEITED, bytes(64))
    assert forfeit.to_json() == {"Err": "00" * 64}
    assert api.SendOutcome.from_json({"Err": "00" * 64}) == forfeit
    with pytest.raises(DecodeError):
        api.SendOutcome.from_json({"Ok": list(PREIMAGE), "Err": "00"})
