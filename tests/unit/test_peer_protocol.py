"""Peer protocol primitives: request/response signatures, freshness, versions, ledger math."""

from __future__ import annotations

import pytest

from fedimint_gw.peer import ledger, wire
from fedimint_gw.peer.errors import PeerAuthFailed

A = "02" + "11" * 32
B = "03" + "22" * 32


def test_request_signature_covers_path_parties_time_nonce_and_body() -> None:
    key = wire.PeerKey(b"secret-a")
    raw = b'{"x": 1}'
    headers, nonce = wire.sign_request(key, "/v1/peer/forward", A, B, raw, 1000)
    auth = wire.parse_auth(headers)
    assert auth.nonce == nonce and auth.timestamp == 1000
    assert wire.verify(key.public_hex, auth.text("/v1/peer/forward", B, raw), auth.signature)
    assert not wire.verify(key.public_hex, auth.text("/v1/peer/forward", B, b'{"x": 2}'), auth.signature)
    assert not wire.verify(key.public_hex, auth.text("/v1/peer/ledger", B, raw), auth.signature)
    assert not wire.verify(key.public_hex, auth.text("/v1/peer/forward", A, raw), auth.signature)
    other = wire.PeerKey(b"secret-b")
    assert not wire.verify(other.public_hex, auth.text("/v1/peer/forward", B, raw), auth.signature)


def test_missing_or_malformed_headers_are_unauthenticated() -> None:
    with pytest.raises(PeerAuthFailed) as exc:
        wire.parse_auth({})
    assert exc.value.peer_code == "unauthenticated"
    key = wire.PeerKey(b"k")
    headers, _ = wire.sign_request(key, "/p", A, B, b"", 5)
    with pytest.raises(PeerAuthFailed):
        wire.parse_auth({**headers, wire.H_NONCE: "short"})
    with pytest.raises(PeerAuthFailed) as exc:
        wire.parse_auth({**headers, wire.H_SIG: "zz"})
    assert exc.value.peer_code == "bad_signature"


def test_time_window() -> None:
    auth = wire.RequestAuth(A, 1000, "00" * 16, "")
    wire.check_fresh(auth, 1000 + wire.TIME_WINDOW)
    with pytest.raises(PeerAuthFailed) as exc:
        wire.check_fresh(auth, 1001 + wire.TIME_WINDOW)
    assert exc.value.peer_code == "stale"
    assert wire.NONCE_TTL >= 2 * wire.TIME_WINDOW  # a nonce outlives every request that may carry it


def test_version_negotiation() -> None:
    assert wire.negotiate({"min": 1, "max": 3}) == 2  # version 2: forward deadlines
    assert wire.negotiate({"min": 1, "max": 1}) == 1  # an older peer: a link without forwards
    assert wire.negotiate({"min": 3, "max": 4}) == 0
    assert wire.negotiate({"min": True, "max": 1}) == 0
    assert wire.negotiate(None) == 0


def test_the_key_secret_never_shows_in_its_repr() -> None:
    key = wire.PeerKey(b"very secret")
    assert "secret" not in repr(key) and key.public_hex in repr(key)


def test_ledger_digest_is_the_same_on_both_sides() -> None:
    ours = [ledger.Entry("forward:1", -500), ledger.Entry("settlement:s", 500), ledger.Entry("forward:2", -7)]
    theirs = [ledger.Entry(e.entry_id, -e.delta_msat) for e in reversed(ours)]
    assert ledger.digest(ours, A, B) == ledger.digest(theirs, B, A)
    assert ledger.balance(ours) == -7
    key_b = wire.PeerKey(b"b")
    stmt = ledger.statement(key_b, B, A, theirs, 10)
    assert ledger.statement_valid(stmt, key_b.public_hex, B, A)
    assert ledger.agrees(ours, A, B, stmt)
    assert not ledger.statement_valid({**stmt, "balance_msat": 8}, key_b.public_hex, B, A)
    assert not ledger.agrees(ours[:2], A, B, stmt)


def test_ledger_compare_ignores_entries_in_flight() -> None:
    ours = [ledger.Entry("forward:1", -500), ledger.Entry("forward:2", -10)]
    theirs = [ledger.Entry("forward:1", 500), ledger.Entry("forward:3", 3)]
    result = ledger.compare(ours, theirs, in_flight={"forward:3"})
    assert not result.agreed and result.missing_there == ("forward:2",) and result.missing_here == ()
    assert ledger.compare(ours, theirs, {"forward:2", "forward:3"}).agreed
    assert ledger.compare(ours, [ledger.Entry("forward:1", 400)], {"forward:2"}).differing == ("forward:1",)


def test_credit_lines_and_settlement_threshold() -> None:
    assert ledger.may_borrow(balance_msat=0, pending_out=0, amount=1000, granted_to_us=1000)
    assert not ledger.may_borrow(0, 1, 1000, 1000)
    assert ledger.may_borrow(500, 0, 1500, 1000)  # the peer owed us 500 first
    assert ledger.may_lend(balance_msat=900, pending_in=0, amount=100, granted_to_peer=1000)
    assert not ledger.may_lend(900, 1, 100, 1000)
    assert ledger.settlement_due(-499, 1000) == 0
    assert ledger.settlement_due(-500, 1000) == 500
    assert ledger.settlement_due(300, 1000) == 0


def test_announcements_are_parsed_strictly_and_read_back_leniently() -> None:
    from fedimint_gw.errors import InvalidInput
    from fedimint_gw.peer import announce

    fed = {"federation_id": "ab" * 32, "scid": "0x1x0", "api_version": "2.0"}
    good = {"federations": [fed], "routes": [{"node_id": A, "scids": ["0x2x0"]}], "expires_at": 5}
    parsed = announce.parse(good)
    assert parsed.to_json() == good and parsed.scids == {"0x1x0"}
    assert announce.parse(None) == announce.Announcement()
    for bad in (
        5,
        {"routes": 5},
        {"routes": [{"node_id": A, "scids": 12345}]},
        {"routes": [{"node_id": "x", "scids": []}]},
        {"routes": [{"node_id": A, "scids": ["0x1x0"] * (announce.MAX_SCIDS + 1)}]},
        {"federations": [fed] * (announce.MAX_FEDERATIONS + 1)},
        {"federations": [{**fed, "scid": 7}]},
        {"federations": [{**fed, "federation_id": "AB" * 32}]},
        {"federations": [{**fed, "api_version": True}]},
        {"expires_at": "soon"},
        {"expires_at": 10**30},
    ):
        with pytest.raises(InvalidInput):
            announce.parse(bad)
        assert announce.stored(bad) == announce.Announcement()


def test_a_forward_deadline_follows_the_blocks_left_and_is_capped() -> None:
    from fedimint_gw.services.peering.forward_sender import (
        MAX_FORWARD_WINDOW,
        MIN_FORWARD_WINDOW,
        SECONDS_PER_BLOCK_FLOOR,
        forward_deadline,
    )

    assert forward_deadline(1000, 24) == 1000 + MAX_FORWARD_WINDOW  # plenty of blocks: the cap
    three = 3 * SECONDS_PER_BLOCK_FLOOR - wire.TIME_WINDOW
    assert forward_deadline(1000, 3) == 1000 + three  # few blocks: their time, less clock tolerance
    assert forward_deadline(1000, 2) is None and forward_deadline(1000, 0) is None  # too little
    assert three >= 2 * MIN_FORWARD_WINDOW


def test_ids_with_a_trailing_newline_are_refused() -> None:
    """`$` in a Python regex also matches before a final newline: ids must match exactly."""
    node = "02" + "ab" * 32
    assert wire.is_node_id(node)
    assert not wire.is_node_id(node + "\n")
    assert not wire.is_protocol_id("fwd-1\n")
    assert wire.is_protocol_id("fwd-1")
