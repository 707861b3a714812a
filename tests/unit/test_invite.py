from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.invite import InviteCode, parse_invite

FID = FederationId("ab" * 32)


def test_round_trip() -> None:
    code = InviteCode(FID, ("http://127.0.0.1:18000", "http://127.0.0.1:18001"))
    text = code.encode()
    assert text.startswith("fed1")
    assert parse_invite(text) == code
    assert parse_invite(text.upper()) == code


@given(st.lists(st.from_regex(r"https?://[a-z0-9.:]{1,40}", fullmatch=True), min_size=1, max_size=4))
def test_round_trip_any_urls(urls: list[str]) -> None:
    code = InviteCode(FID, tuple(urls))
    assert parse_invite(code.encode()) == code


def test_one_changed_character_is_caught() -> None:
    text = InviteCode(FID, ("http://127.0.0.1:18000",)).encode()
    i = len(text) // 2
    swapped = text[:i] + ("q" if text[i] != "q" else "p") + text[i + 1 :]
    with pytest.raises(ValueError, match="checksum"):
        parse_invite(swapped)


@pytest.mark.parametrize(
    "bad,why",
    [
        ("", "fed1"),
        ("lnbc1xyz", "fed1"),
        ("fed1", "too short"),
        ("fed1bbbbbbbbb!", "alphabet"),
        (42, "string"),
    ],
)
def test_garbage_is_refused_clearly(bad: object, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_invite(bad)


def test_bech32_not_bech32m_is_refused() -> None:
    from bech32 import bech32_encode, convertbits

    payload = [0, *FID.raw, 0, 5, *b"http:"]
    data = convertbits(payload, 8, 5, True)
    assert data is not None
    with pytest.raises(ValueError, match="checksum"):
        parse_invite(bech32_encode("fed", data))
