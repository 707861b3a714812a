"""Out-of-band e-cash (`OOBNotes`, `modules/fedimint-mint-client/src/lib.rs`).

Payload: consensus encoding of `Vec<OOBNotesPart>`:
    0 Notes(TieredMulti<SpendableNote { signature: G1, spend_key: 32-byte secret }>)
    1 FederationIdPrefix([u8; 4])
    2 Invite { peer_apis: Vec<(PeerId, SafeUrl)>, federation_id: [u8; 32] }
    3 ApiSecret(String)
    other variants kept.
Decoding checks what upstream's `Decodable for OOBNotes` checks: some Notes; a federation id
prefix or an invite (consistent when both); an invite lists at least one API. The text form is
base64: upstream prints standard base64 by default and URL-safe with `{:#}`, both padded, and
parses URL-safe first, then standard. `encode()` here gives URL-safe (`encode(url_safe=False)`
gives standard). Newer releases also accept a base32 `fedimint...` form; not handled here.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass

from fedimint_gw.domain.ids import FederationId
from fedimint_gw.fedimint.encoding import Reader, UnknownVariant, Writer, decode_whole, encode
from fedimint_gw.fedimint.errors import DecodeError
from fedimint_gw.fedimint.mint_types import (
    SpendableNote,
    read_tiered_multi_notes,
    write_tiered_multi_notes,
)
from fedimint_gw.fedimint.urls import normalize_url

_B64URL = re.compile(r"^[A-Za-z0-9_-]*={0,2}$")
_B64STD = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


@dataclass(frozen=True)
class NotesPart:
    notes: Mapping[int, tuple[SpendableNote, ...]]


@dataclass(frozen=True)
class FederationIdPrefixPart:
    prefix: bytes


@dataclass(frozen=True)
class InvitePart:
    peer_apis: tuple[tuple[int, str], ...]
    federation_id: FederationId


@dataclass(frozen=True)
class ApiSecretPart:
    secret: str


OOBNotesPart = NotesPart | FederationIdPrefixPart | InvitePart | ApiSecretPart | UnknownVariant


@dataclass(frozen=True)
class OOBNotes:
    """Notes handed over out of band, with enough to find their federation."""

    parts: tuple[OOBNotesPart, ...]

    def __post_init__(self) -> None:
        if not any(isinstance(p, NotesPart) for p in self.parts):
            raise DecodeError("no e-cash notes were found in OOBNotes data")
        prefix = next((p.prefix for p in self.parts if isinstance(p, FederationIdPrefixPart)), None)
        invite = next((p for p in self.parts if isinstance(p, InvitePart)), None)
        if prefix is None and invite is None:
            raise DecodeError("no federation id provided in OOBNotes data")
        if prefix is not None and invite is not None and invite.federation_id.raw[:4] != prefix:
            raise DecodeError("inconsistent federation id provided in OOBNotes data")
        if invite is not None and not invite.peer_apis:
            raise DecodeError("invite didn't contain API endpoints")
        if not self.notes:
            raise DecodeError("OOBNotes cannot be empty")

    @classmethod
    def new(
        cls,
        federation_id: FederationId,
        notes: Mapping[int, tuple[SpendableNote, ...]],
        peer_apis: tuple[tuple[int, str], ...] = (),
        api_secret: str | None = None,
    ) -> OOBNotes:
        """Prefix and notes (upstream `OOBNotes::new` order), plus an invite when APIs are given."""
        parts: list[OOBNotesPart] = [FederationIdPrefixPart(federation_id.raw[:4]), NotesPart(notes)]
        if peer_apis:
            apis = tuple((peer, normalize_url(url)) for peer, url in peer_apis)
            parts.append(InvitePart(apis, federation_id))
        if api_secret is not None:
            parts.append(ApiSecretPart(api_secret))
        return cls(tuple(parts))

    @property
    def notes(self) -> dict[int, tuple[SpendableNote, ...]]:
        """All notes by denomination (several Notes parts are merged, as upstream does)."""
        merged: dict[int, list[SpendableNote]] = {}
        for part in self.parts:
            if isinstance(part, NotesPart):
                for amount, items in part.notes.items():
                    merged.setdefault(amount, []).extend(items)
        return {amount: tuple(items) for amount, items in sorted(merged.items()) if items}

    @property
    def total_msat(self) -> int:
        return sum(amount * len(items) for amount, items in self.notes.items())

    @property
    def federation_id_prefix(self) -> bytes:
        prefix = next((p.prefix for p in self.parts if isinstance(p, FederationIdPrefixPart)), None)
        if prefix is not None:
            return prefix
        return next(p.federation_id.raw[:4] for p in self.parts if isinstance(p, InvitePart))

    @property
    def invite(self) -> InvitePart | None:
        return next((p for p in self.parts if isinstance(p, InvitePart)), None)

    def to_bytes(self) -> bytes:
        return encode(lambda w: w.vec(self.parts, _write_part))

    def encode(self, url_safe: bool = True) -> str:
        """Padded base64 of the encoding: URL-safe alphabet, or the standard one."""
        data = self.to_bytes()
        return (base64.urlsafe_b64encode(data) if url_safe else base64.b64encode(data)).decode("ascii")


def _write_part(w: Writer, part: OOBNotesPart) -> None:
    if isinstance(part, NotesPart):
        w.variant(0, encode(lambda b: write_tiered_multi_notes(b, part.notes)))
    elif isinstance(part, FederationIdPrefixPart):
        w.variant(1, encode(lambda b: b.fixed(part.prefix, 4)))
    elif isinstance(part, InvitePart):

        def invite(b: Writer) -> None:
            b.vec(part.peer_apis, lambda ww, pa: ww.u16(pa[0]).string(pa[1]))
            b.fixed(part.federation_id.raw, 32)

        w.variant(2, encode(invite))
    elif isinstance(part, ApiSecretPart):
        w.variant(3, encode(lambda b: b.string(part.secret)))
    else:
        w.unknown(part)


def _read_peer_api(r: Reader) -> tuple[int, str]:
    peer = r.u16()
    return peer, normalize_url(r.string())


def _read_part(r: Reader) -> OOBNotesPart:
    return r.enum(
        {
            0: lambda b: NotesPart(read_tiered_multi_notes(b)),
            1: lambda b: FederationIdPrefixPart(b.fixed(4)),
            2: lambda b: InvitePart(b.vec(_read_peer_api), FederationId(b.fixed(32).hex())),
            3: lambda b: ApiSecretPart(b.string()),
        }
    )


def oob_notes_from_bytes(data: bytes) -> OOBNotes:
    return OOBNotes(decode_whole(data, lambda r: r.vec(_read_part)))


def parse_oob_notes(raw: object) -> OOBNotes:
    """Parse the base64 text form (URL-safe or standard, padded; whitespace ignored)."""
    if not isinstance(raw, str):
        raise DecodeError("e-cash notes are a base64 string")
    text = "".join(raw.split())
    if not text:
        raise DecodeError("e-cash notes are empty")
    data: bytes | None = None
    for pattern, decoder in ((_B64URL, base64.urlsafe_b64decode), (_B64STD, base64.b64decode)):
        if pattern.match(text) and len(text) % 4 == 0:
            try:
                data = decoder(text)
                break
            except (binascii.Error, ValueError):
                continue
    if data is None:
        raise DecodeError("e-cash notes are not padded base64 (URL-safe or standard)")
    return oob_notes_from_bytes(data)
