"""LNv1 protocol types: encodings laid out byte by byte from upstream's field orders, and the
shapes the official client sent and accepted (docs/official-client.md)."""

from __future__ import annotations

import copy
import hashlib
from typing import Any

import pytest

from fedimint_gw.crypto.bls import threshold_crypto as tc
from fedimint_gw.crypto.bls.chacha import ChaChaRng
from fedimint_gw.fedimint.encoding import UnknownVariant, decode_whole, encode
from fedimint_gw.fedimint.errors import DecodeError
from fedimint_gw.fedimint.ln.contracts import (
    ContractAccount,
    DecryptedPreimage,
    FundedIncoming,
    IncomingContract,
    IncomingContractOffer,
    OutgoingContract,
    PreimageState,
    payment_hash_of_key,
    preimage_of_key,
)
from fedimint_gw.fedimint.ln.gateway import GatewayAnnouncement
from fedimint_gw.fedimint.ln.items import (
    CancelOutcomeV0,
    CancelOutgoing,
    ContractOutcomeV0,
    ContractOutput,
    LightningClientConfig,
    LightningInputV0,
    OfferOutcomeV0,
    ln_input_bytes,
    ln_input_from_bytes,
    ln_output_bytes,
    ln_output_from_bytes,
    read_ln_outcome,
    write_ln_outcome,
)
from fedimint_gw.fedimint.transaction import OutPoint

HASH = bytes(range(32))
GW_KEY = bytes([2]) + bytes([7]) * 32
USER_KEY = bytes([3]) + bytes([9]) * 32


def _varint(n: int) -> bytes:
    return bytes([n]) if n < 0xFD else b"\xfd" + n.to_bytes(2, "big")


def test_outgoing_contract_id_is_the_hash_the_official_client_computes() -> None:
    contract = OutgoingContract(HASH, GW_KEY, 617, USER_KEY, cancelled=True)
    # as tests/interop/fake_ln.py computes it (the client accepted that id): every field but cancelled
    expected = hashlib.sha256(HASH + GW_KEY + b"\xfd\x02\x69" + USER_KEY).digest()
    assert contract.contract_id() == expected
    assert OutgoingContract(HASH, GW_KEY, 617, USER_KEY, cancelled=False).contract_id() == expected


def test_outgoing_contract_output_layout() -> None:
    contract = OutgoingContract(HASH, GW_KEY, 100, USER_KEY)
    body = HASH + GW_KEY + bytes([100]) + USER_KEY + b"\x00"
    contract_enum = b"\x01" + _varint(len(body)) + body  # Contract::Outgoing
    fields = _varint(1000) + contract_enum  # ContractOutput{amount, contract}
    v0 = b"\x00" + _varint(len(fields)) + fields  # LightningOutputV0::Contract
    expected = b"\x00" + _varint(len(v0)) + v0  # LightningOutput::V0
    assert ln_output_bytes(ContractOutput(1000, contract)) == expected
    assert ln_output_from_bytes(expected) == ContractOutput(1000, contract)


def test_offer_output_round_trips_with_a_real_ciphertext() -> None:
    secret = tc.SecretKeySet.random(2, ChaChaRng(bytes(32)))
    key = bytes([2]) + bytes([5]) * 32
    ct = tc.encrypt_with_rng(secret.public_keys().public_key(), key, ChaChaRng(bytes([1]) * 32))
    offer = IncomingContractOffer(5000, payment_hash_of_key(key), ct.to_bytes(), None)
    raw = ln_output_bytes(offer)
    assert raw[:1] == b"\x00" and ln_output_from_bytes(raw) == offer
    assert tc.Ciphertext.from_bytes(offer.encrypted_preimage) == ct
    assert offer.offer_id() == hashlib.sha256(preimage_of_key(key)).digest()


def test_inputs_round_trip_and_the_witness_is_an_option() -> None:
    claim = LightningInputV0(HASH, 1000, bytes([4]) * 32)
    refund = LightningInputV0(HASH, 1000, None)
    inner = HASH + _varint(1000) + b"\x00"
    assert ln_input_bytes(refund) == b"\x00" + _varint(len(inner)) + inner
    assert ln_input_from_bytes(ln_input_bytes(claim)) == claim
    assert ln_input_from_bytes(ln_input_bytes(refund)) == refund


def test_cancel_output_and_every_outcome_round_trip() -> None:
    cancel = CancelOutgoing(HASH, bytes(64))
    assert ln_output_from_bytes(ln_output_bytes(cancel)) == cancel
    outcomes = [
        ContractOutcomeV0(HASH, None),
        ContractOutcomeV0(HASH, DecryptedPreimage(PreimageState.PENDING)),
        ContractOutcomeV0(HASH, DecryptedPreimage(PreimageState.SOME, GW_KEY)),
        ContractOutcomeV0(HASH, DecryptedPreimage(PreimageState.INVALID)),
        OfferOutcomeV0(HASH),
        CancelOutcomeV0(HASH),
    ]
    for outcome in outcomes:
        raw = encode(lambda w, o=outcome: write_ln_outcome(w, o))
        assert decode_whole(raw, read_ln_outcome) == outcome


def test_unknown_versions_are_kept_and_unknown_v0_variants_refused() -> None:
    unknown = b"\x01\x02\xab\xcd"
    assert ln_output_from_bytes(unknown) == UnknownVariant(1, b"\xab\xcd")
    assert ln_output_bytes(UnknownVariant(1, b"\xab\xcd")) == unknown
    with pytest.raises(DecodeError):
        ln_output_from_bytes(b"\x00\x02\x07\x00")  # LightningOutputV0 variant 7


def test_decrypted_preimage_key_only_when_some() -> None:
    with pytest.raises(ValueError):
        DecryptedPreimage(PreimageState.PENDING, GW_KEY)
    with pytest.raises(ValueError):
        DecryptedPreimage(PreimageState.SOME)


def test_accounts_round_trip_and_serve_the_json_the_client_accepted() -> None:
    outgoing = ContractAccount(1000, OutgoingContract(HASH, GW_KEY, 617, USER_KEY))
    assert decode_whole(encode(outgoing.write), ContractAccount.read) == outgoing
    assert outgoing.to_json() == {
        "amount": 1000,
        "contract": {
            "Outgoing": {
                "hash": HASH.hex(),
                "gateway_key": GW_KEY.hex(),
                "timelock": 617,
                "user_key": USER_KEY.hex(),
                "cancelled": False,
            }
        },
    }
    incoming = ContractAccount(
        900,
        FundedIncoming(
            IncomingContract(HASH, b"\x01" * 150, DecryptedPreimage(PreimageState.PENDING), GW_KEY),
            OutPoint(bytes(32), 1),
        ),
    )
    assert decode_whole(encode(incoming.write), ContractAccount.read) == incoming
    assert incoming.contract_id == HASH


def test_cancellation_message_commits_to_the_contract_id() -> None:
    contract = OutgoingContract(HASH, GW_KEY, 617, USER_KEY)
    tag = b"outgoing contract cancellation"
    expected = hashlib.sha256(bytes([len(tag)]) + tag + contract.contract_id()).digest()
    assert contract.cancellation_message() == expected


def test_client_config_layout_matches_what_the_client_accepted() -> None:
    g1 = bytes([0x97]) + bytes(47)
    config = LightningClientConfig(g1, 0, 0)
    assert config.to_bytes() == g1 + b"\x00\x00" + b"\xfe\xda\xb5\xbf\xfa"
    assert LightningClientConfig.from_bytes(config.to_bytes()) == config


ANNOUNCEMENT = {
    "info": {
        "mint_channel_id": 12345,
        "gateway_redeem_key": GW_KEY.hex(),
        "node_pub_key": USER_KEY.hex(),
        "lightning_alias": "fedimint-gw",
        "api": "http://127.0.0.1:9/",
        "route_hints": [],
        "fees": {"base_msat": 1000, "proportional_millionths": 100},
        "gateway_id": GW_KEY.hex(),
        "supports_private_payments": False,
    },
    "vetted": False,
    "ttl": {"secs": 600, "nanos": 0},
}


def test_gateway_announcement_parses_and_serves_the_accepted_shape() -> None:
    parsed = GatewayAnnouncement.from_json(ANNOUNCEMENT)
    assert parsed.info.mint_channel_id == 12345 and parsed.ttl_secs == 600
    assert parsed.to_json() == ANNOUNCEMENT


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("info", "gateway_id"), "04" + "00" * 32),
        (("info", "api"), "file:///etc/passwd"),
        (("info", "mint_channel_id"), -1),
        (("info", "fees"), {"base_msat": True, "proportional_millionths": 0}),
        (("ttl",), {"secs": "600"}),
        (("info", "route_hints"), [[]] * 17),
    ],
)
def test_bad_gateway_announcements_are_refused(path: tuple[str, ...], value: object) -> None:
    bad = copy.deepcopy(ANNOUNCEMENT)
    target: dict[str, object] = bad
    for key in path[:-1]:
        inner = target[key]
        assert isinstance(inner, dict)
        target = inner
    target[path[-1]] = value
    with pytest.raises(DecodeError):
        GatewayAnnouncement.from_json(bad)


def test_account_json_round_trips_through_the_adapters_parser() -> None:
    from fedimint_gw.fedimint.ln.json_forms import account_from_json

    ct = bytes(range(48)) + bytes(range(96)) + b"\x07" * 33
    for state in (
        DecryptedPreimage(PreimageState.PENDING),
        DecryptedPreimage(PreimageState.SOME, GW_KEY),
        DecryptedPreimage(PreimageState.INVALID),
    ):
        incoming = ContractAccount(
            900, FundedIncoming(IncomingContract(HASH, ct, state, GW_KEY), OutPoint(bytes(32), 1))
        )
        assert account_from_json(incoming.to_json()) == incoming
    outgoing = ContractAccount(1000, OutgoingContract(HASH, GW_KEY, 617, USER_KEY, True))
    assert account_from_json(outgoing.to_json()) == outgoing


@pytest.mark.parametrize(
    "mutate",
    [
        lambda j: j["contract"].update({"Both": {}}),
        lambda j: j.update({"amount": -1}),
        lambda j: j["contract"]["Incoming"]["contract"].update({"decrypted_preimage": {"Some": [256] * 33}}),
        lambda j: j["contract"]["Incoming"]["contract"].update({"decrypted_preimage": {"Some": [1] * 32}}),
        lambda j: j["contract"]["Incoming"]["contract"].update(
            {"encrypted_preimage": [[0] * 48, [], [0] * 95]}
        ),
        lambda j: j["contract"]["Incoming"]["contract"].update(
            {"encrypted_preimage": [[0] * 48, [0] * 999, [0] * 96]}
        ),
        lambda j: j["contract"]["Incoming"]["contract"].update({"decrypted_preimage": "Maybe"}),
        lambda j: j["contract"]["Incoming"]["out_point"].update({"out_idx": True}),
    ],
)
def test_malformed_guardian_accounts_are_refused(mutate: Any) -> None:
    from fedimint_gw.fedimint.ln.json_forms import account_from_json

    ct = bytes(48) + bytes(96) + b"\x07" * 33
    good = ContractAccount(
        900,
        FundedIncoming(
            IncomingContract(HASH, ct, DecryptedPreimage(PreimageState.PENDING), GW_KEY),
            OutPoint(bytes(32), 1),
        ),
    ).to_json()
    bad = copy.deepcopy(good)
    mutate(bad)
    with pytest.raises(DecodeError):
        account_from_json(bad)
