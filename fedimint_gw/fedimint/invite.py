"""Fedimint invite codes (`fedimint-core/src/invite_code.rs`): bech32m strings `fed11...`.

The human-readable part is "fed1", so codes start "fed1" + separator "1". The payload is the
consensus encoding of `Vec<InviteCodePart>`:
    0 Api { url: SafeUrl (String), peer: PeerId (u16) }
    1 FederationId ([u8; 32])
    2 ApiSecret (String)
    other variants are kept (`#[encodable_default]`) and re-encoded unchanged.
A valid code has at least one Api part and one FederationId part. Encoding uses the bech32m
checksum (as upstream's `Display`); decoding, like upstream's `bech32::decode`, also accepts a
bech32 checksum. Newer Fedimint also prints a base32 `fedimint...` form; not handled here.
(`fedimint_gw/domain/invite.py` is devfed's own, different format.)
"""

from __future__ import annotations

from dataclasses import dataclass

from bech32 import CHARSET, bech32_hrp_expand, bech32_polymod, convertbits

from fedimint_gw.domain.ids import FederationId
from fedimint_gw.fedimint.encoding import Reader, UnknownVariant, Writer, decode_whole, encode
from fedimint_gw.fedimint.errors import DecodeError, EncodeError
from fedimint_gw.fedimint.urls import normalize_url

HRP = "fed1"
_BECH32_CONST = 1
_BECH32M_CONST = 0x2BC830A3
MAX_INVITE_LEN = 1023 + len(HRP) + 1


@dataclass(frozen=True)
class ApiPart:
    """One guardian's API URL and peer id."""

    url: str
    peer: int


@dataclass(frozen=True)
class FederationIdPart:
    federation_id: FederationId


@dataclass(frozen=True)
class ApiSecretPart:
    secret: str


InvitePart = ApiPart | FederationIdPart | ApiSecretPart | UnknownVariant


@dataclass(frozen=True)
class InviteCode:
    """A decoded Fedimint invite code: its parts, in order."""

    parts: tuple[InvitePart, ...]

    def __post_init__(self) -> None:
        if not any(isinstance(p, ApiPart) for p in self.parts):
            raise DecodeError("no API was provided in the invite code")
        if not any(isinstance(p, FederationIdPart) for p in self.parts):
            raise DecodeError("no federation id was provided in the invite code")

    @classmethod
    def new(
        cls, url: str, peer: int, federation_id: FederationId, api_secret: str | None = None
    ) -> InviteCode:
        """Api, FederationId and optionally ApiSecret, in upstream's order."""
        parts: list[InvitePart] = [ApiPart(normalize_url(url), peer), FederationIdPart(federation_id)]
        if api_secret is not None:
            parts.append(ApiSecretPart(api_secret))
        return cls(tuple(parts))

    @property
    def federation_id(self) -> FederationId:
        return next(p.federation_id for p in self.parts if isinstance(p, FederationIdPart))

    @property
    def peers(self) -> dict[int, str]:
        """Every guardian URL in the code by peer id (a later part wins, as upstream)."""
        return {p.peer: p.url for p in self.parts if isinstance(p, ApiPart)}

    @property
    def url(self) -> str:
        """The first guardian URL."""
        return next(p.url for p in self.parts if isinstance(p, ApiPart))

    @property
    def peer(self) -> int:
        """The peer id of the first guardian URL."""
        return next(p.peer for p in self.parts if isinstance(p, ApiPart))

    @property
    def api_secret(self) -> str | None:
        return next((p.secret for p in self.parts if isinstance(p, ApiSecretPart)), None)

    def to_bytes(self) -> bytes:
        """The consensus encoding of the parts."""
        return encode(lambda w: w.vec(self.parts, _write_part))

    def encode(self) -> str:
        """The `fed11...` string."""
        data = convertbits(list(self.to_bytes()), 8, 5, True)
        if data is None:  # pragma: no cover - 8-to-5 with padding cannot fail
            raise EncodeError("cannot convert invite payload")
        return HRP + "1" + "".join(CHARSET[d] for d in data + _checksum(data, _BECH32M_CONST))

    def __str__(self) -> str:
        return self.encode()


def _write_part(w: Writer, part: InvitePart) -> None:
    if isinstance(part, ApiPart):
        w.variant(0, encode(lambda b: b.string(part.url).u16(part.peer)))
    elif isinstance(part, FederationIdPart):
        w.variant(1, encode(lambda b: b.fixed(part.federation_id.raw, 32)))
    elif isinstance(part, ApiSecretPart):
        w.variant(2, encode(lambda b: b.string(part.secret)))
    else:
        w.unknown(part)


def _read_part(r: Reader) -> InvitePart:
    return r.enum(
        {
            0: lambda b: ApiPart(normalize_url(b.string()), b.u16()),
            1: lambda b: FederationIdPart(FederationId(b.fixed(32).hex())),
            2: lambda b: ApiSecretPart(b.string()),
        }
    )


def invite_from_bytes(data: bytes) -> InviteCode:
    """Decode the consensus-encoded payload of an invite code."""
    return InviteCode(decode_whole(data, lambda r: r.vec(_read_part)))


def _checksum(data: list[int], const: int) -> list[int]:
    polymod = bech32_polymod([*bech32_hrp_expand(HRP), *data, 0, 0, 0, 0, 0, 0]) ^ const
    return [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]


def parse_invite_code(raw: object) -> InviteCode:
    """Decode and validate a `fed11...` invite code; DecodeError with the reason otherwise."""
    if not isinstance(raw, str):
        raise DecodeError("an invite code is a string starting with 'fed11'")
    text = raw.strip()
    if len(text) > MAX_INVITE_LEN:
        raise DecodeError("invite code too long")
    if text.lower() != text and text.upper() != text:
        raise DecodeError("invite code mixes upper and lower case")
    text = text.lower()
    sep = text.rfind("1")
    if sep < 1 or text[:sep] != HRP:
        raise DecodeError("not a Fedimint invite code: it must start with 'fed11'")
    try:
        values = [CHARSET.index(c) for c in text[sep + 1 :]]
    except ValueError:
        raise DecodeError("invite code has characters outside the bech32 alphabet") from None
    if len(values) < 6:
        raise DecodeError("invite code too short")
    if bech32_polymod(bech32_hrp_expand(HRP) + values) not in (_BECH32M_CONST, _BECH32_CONST):
        raise DecodeError("invite code checksum is wrong (mistyped or truncated?)")
    payload = convertbits(values[:-6], 5, 8, False)
    if payload is None:
        raise DecodeError("invite code payload has invalid padding")
    return invite_from_bytes(bytes(payload))
