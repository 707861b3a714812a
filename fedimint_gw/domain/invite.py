"""Federation invite codes: bech32m strings `fed1...`.

Payload (before 8-to-5 bit conversion):
    version (1 byte, = 0) | federation id (32 bytes) | url length (2 bytes BE) | guardian API url (UTF-8)
    [ | url length | url ]...
The federation id is sha256 of the federation's canonical public config; a client fetches the
config from a listed guardian and must check that its hash matches (see docs/federation-api.md).
The `bech32` package only knows bech32, so the bech32m checksum is computed here from its
polymod helper; invite codes may exceed bech32's 90-character limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from bech32 import CHARSET, bech32_hrp_expand, bech32_polymod, convertbits

from fedimint_gw.domain.ids import FederationId

HRP = "fed"
_BECH32M_CONST = 0x2BC830A3
_VERSION = 0
_MAX_LEN = 2000


@dataclass(frozen=True)
class InviteCode:
    """A decoded invite code: which federation, and where to reach its guardians."""

    federation_id: FederationId
    guardian_urls: tuple[str, ...]

    def encode(self) -> str:
        """The `fed1...` string."""
        if not self.guardian_urls:
            raise ValueError("an invite code needs at least one guardian url")
        payload = bytearray([_VERSION]) + self.federation_id.raw
        for url in self.guardian_urls:
            raw = url.encode("utf-8")
            if not raw or len(raw) > 0xFFFF:
                raise ValueError(f"bad guardian url {url!r}")
            payload += len(raw).to_bytes(2, "big") + raw
        data = convertbits(list(payload), 8, 5, True)
        if data is None:
            raise ValueError("cannot convert invite payload")
        checksum = _checksum(HRP, data)
        return HRP + "1" + "".join(CHARSET[d] for d in data + checksum)


def _checksum(hrp: str, data: list[int]) -> list[int]:
    values = bech32_hrp_expand(hrp) + data
    polymod = bech32_polymod([*values, 0, 0, 0, 0, 0, 0]) ^ _BECH32M_CONST
    return [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]


def parse_invite(raw: object) -> InviteCode:
    """Decode and validate an invite code; ValueError with a clear reason otherwise."""
    if not isinstance(raw, str):
        raise ValueError("an invite code is a string starting with 'fed1'")
    text = raw.strip()
    if text.lower() != text and text.upper() != text:
        raise ValueError("invite code mixes upper and lower case")
    text = text.lower()
    if len(text) > _MAX_LEN:
        raise ValueError("invite code too long")
    pos = text.rfind("1")
    if pos < 1 or text[:pos] != HRP:
        raise ValueError("not a federation invite code: it must start with 'fed1'")
    try:
        values = [CHARSET.index(c) for c in text[pos + 1 :]]
    except ValueError:
        raise ValueError("invite code has characters outside the bech32 alphabet") from None
    if len(values) < 7:
        raise ValueError("invite code too short")
    if bech32_polymod(bech32_hrp_expand(HRP) + values) != _BECH32M_CONST:
        raise ValueError("invite code checksum is wrong (mistyped or truncated?)")
    payload = convertbits(values[:-6], 5, 8, False)
    if payload is None or len(payload) < 33:
        raise ValueError("invite code payload is malformed")
    if payload[0] != _VERSION:
        raise ValueError(f"invite code version {payload[0]} is not supported (expected {_VERSION})")
    fid = FederationId(bytes(payload[1:33]).hex())
    urls: list[str] = []
    rest = bytes(payload[33:])
    while rest:
        if len(rest) < 2:
            raise ValueError("invite code payload is truncated")
        n = int.from_bytes(rest[:2], "big")
        if n == 0 or len(rest) < 2 + n:
            raise ValueError("invite code guardian url is truncated")
        try:
            url = rest[2 : 2 + n].decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("invite code guardian url is not UTF-8") from None
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"invite code guardian url must be http(s): {url!r}")
        urls.append(url)
        rest = rest[2 + n :]
    if not urls:
        raise ValueError("invite code lists no guardian url")
    return InviteCode(fid, tuple(urls))
