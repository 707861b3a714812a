"""Fedimint invite codes: the upstream vector, round trips, unknown parts and refusals."""

from __future__ import annotations

import pytest
from bech32 import CHARSET, convertbits
from hypothesis import given
from hypothesis import strategies as st

from fedimint_gw.domain.ids import FederationId
from fedimint_gw.fedimint.encoding import UnknownVariant, encode
from fedimint_gw.fedimint.errors import DecodeError
from fedimint_gw.fedimint.invite import (
    HRP,
    ApiPart,
    ApiSecretPart,
    FederationIdPart,
    InviteCode,
    _checksum,
    invite_from_bytes,
    parse_invite_code,
)

# fedimint-core/src/invite_code/tests.rs
UPSTREAM = (
    "fed11qgqpu8rhwden5te0vejkg6tdd9h8gepwd4cxcumxv4jzuen0duhsqqfqh6nl7sgk72caxfx8khtfnn8y436q3nhyrkev3qp8ug"
    "dhdllnh86qmp42pm"
)
UPSTREAM_FID = FederationId("bea7ff4116f2b1d324c7b5d699cce4ac7408cee41db2c88027e21b76fff3b9f4")


def _bech32(payload: bytes, const: int = 0x2BC830A3) -> str:
    data = convertbits(list(payload), 8, 5, True)
    assert data is not None
    return HRP + "1" + "".join(CHARSET[d] for d in data + _checksum(data, const))


def test_upstream_vector_decodes_to_its_parts() -> None:
    code = parse_invite_code(UPSTREAM)
    assert code.parts == (ApiPart("wss://fedimintd.mplsfed.foo/", 0), FederationIdPart(UPSTREAM_FID))
    assert code.federation_id == UPSTREAM_FID
    assert code.url == "wss://fedimintd.mplsfed.foo/" and code.peer == 0
    assert code.peers == {0: "wss://fedimintd.mplsfed.foo/"}
    assert code.api_secret is None


def test_upstream_vector_re_encodes_identically() -> None:
    assert parse_invite_code(UPSTREAM).encode() == UPSTREAM
    assert str(InviteCode.new("wss://fedimintd.mplsfed.foo/", 0, UPSTREAM_FID)) == UPSTREAM


def test_upper_case_is_accepted_mixed_case_is_not() -> None:
    assert parse_invite_code(UPSTREAM.upper()).federation_id == UPSTREAM_FID
    with pytest.raises(DecodeError, match="mixes"):
        parse_invite_code(UPSTREAM[:10] + UPSTREAM[10:].upper())


def test_api_secret_and_unknown_parts_survive_a_round_trip() -> None:
    unknown = UnknownVariant(7, b"future")
    code = InviteCode((ApiPart("ws://127.0.0.1:18000/", 2), FederationIdPart(UPSTREAM_FID), unknown))
    code = InviteCode((*code.parts, ApiSecretPart("hunter2")))
    again = parse_invite_code(code.encode())
    assert again == code and again.api_secret == "hunter2"


def test_url_is_normalized_like_safeurl() -> None:
    code = InviteCode.new("WS://127.0.0.1:18000", 1, UPSTREAM_FID)
    assert code.url == "ws://127.0.0.1:18000/"


def test_bech32_checksum_is_accepted_like_upstream_decode() -> None:
    payload = parse_invite_code(UPSTREAM).to_bytes()
    assert parse_invite_code(_bech32(payload, const=1)).federation_id == UPSTREAM_FID


@pytest.mark.parametrize(
    "bad,why",
    [
        (42, "string"),
        ("", "fed11"),
        ("lnbc1xyz", "fed11"),
        ("fed1xyz", "fed11"),
        ("fed11qqq", "short|checksum"),
        (UPSTREAM[:-1] + ("q" if UPSTREAM[-1] != "q" else "p"), "checksum"),
        (UPSTREAM[:20] + "b" + UPSTREAM[21:], "alphabet"),
        ("fed11" + "q" * 2000, "too long"),
    ],
)
def test_refusals(bad: object, why: str) -> None:
    with pytest.raises(DecodeError, match=why):
        parse_invite_code(bad)


def test_truncated_payload_is_a_decode_error() -> None:
    """As upstream's test: drop the last payload byte (mid federation id)."""
    payload = parse_invite_code(UPSTREAM).to_bytes()
    with pytest.raises(DecodeError, match="exceeds"):
        parse_invite_code(_bech32(payload[:-1]))


def test_code_without_federation_id_or_api_is_refused() -> None:
    only_api = encode(
        lambda w: w.vec([0], lambda ww, _x: ww.variant(0, encode(lambda b: b.string("ws://a/").u16(0))))
    )
    with pytest.raises(DecodeError, match="federation id"):
        invite_from_bytes(only_api)
    only_fid = encode(lambda w: w.vec([0], lambda ww, _x: ww.variant(1, UPSTREAM_FID.raw)))
    with pytest.raises(DecodeError, match="API"):
        invite_from_bytes(only_fid)


def test_trailing_bytes_in_payload_are_refused() -> None:
    payload = parse_invite_code(UPSTREAM).to_bytes() + b"\x00"
    with pytest.raises(DecodeError, match="trailing"):
        parse_invite_code(_bech32(payload))


@given(
    st.lists(
        st.tuples(
            st.from_regex(r"wss?://[a-z0-9]{1,20}(\.[a-z]{2,5})?(:[1-9][0-9]{3})?/", fullmatch=True),
            st.integers(0, 0xFFFF),
        ),
        min_size=1,
        max_size=5,
    ),
    st.binary(min_size=32, max_size=32),
    st.one_of(st.none(), st.text(max_size=30)),
)
def test_round_trip(apis: list[tuple[str, int]], fid: bytes, secret: str | None) -> None:
    parts: list[ApiPart | FederationIdPart | ApiSecretPart] = [ApiPart(u, p) for u, p in apis]
    parts.append(FederationIdPart(FederationId(fid.hex())))
    if secret is not None:
        parts.append(ApiSecretPart(secret))
    code = InviteCode(tuple(parts))
    assert parse_invite_code(code.encode()) == code
