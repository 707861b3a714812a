"""TEST-ONLY Fedimint consensus encoding, just enough for a fake guardian and invite codes.

To be replaced by the project's real Fedimint encoder (fedimint_gw/fedimint/, being written in
parallel) once it lands. Written from docs/../fedimint-protocol.md §1.2-1.3, checked here against the
upstream invite-code vector and by the official client accepting what it produces:
- integers (u16/u32/u64, Amount, PeerId) are LN BigSize varints;
- String/Vec<u8> = varint length + bytes; maps/vecs = varint count + items (keys ascending);
- enum = varint variant index + the variant's fields as one length-prefixed byte string;
- module values ("DynRawFallback") = varint module instance id + varint length + bytes.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bech32 import CHARSET, bech32_hrp_expand, bech32_polymod

BECH32M_CONST = 0x2BC830A3
INVITE_HRP = "fed1"


class EncodingError(ValueError):
    """Bytes or text that this helper cannot read."""


def varint(value: int) -> bytes:
    """LN BigSize, as Fedimint encodes u16/u32/u64."""
    if not 0 <= value < 1 << 64:
        raise EncodingError(f"varint out of range: {value}")
    if value < 0xFD:
        return bytes([value])
    if value <= 0xFFFF:
        return b"\xfd" + value.to_bytes(2, "big")
    if value <= 0xFFFF_FFFF:
        return b"\xfe" + value.to_bytes(4, "big")
    return b"\xff" + value.to_bytes(8, "big")


def read_varint(data: bytes, pos: int) -> tuple[int, int]:
    """The varint at `pos` and the position after it."""
    if pos >= len(data):
        raise EncodingError("truncated varint")
    first = data[pos]
    width = {0xFD: 2, 0xFE: 4, 0xFF: 8}.get(first, 0)
    if width == 0:
        return first, pos + 1
    end = pos + 1 + width
    if end > len(data):
        raise EncodingError("truncated varint")
    return int.from_bytes(data[pos + 1 : end], "big"), end


def length_prefixed(raw: bytes) -> bytes:
    """Vec<u8> / String: varint length then the bytes."""
    return varint(len(raw)) + raw


def text(value: str) -> bytes:
    """A String."""
    return length_prefixed(value.encode())


def enum_variant(index: int, fields: bytes) -> bytes:
    """An enum value: variant index, then its fields as one length-prefixed byte string."""
    return varint(index) + length_prefixed(fields)


def sequence(items: Iterable[bytes]) -> bytes:
    """Vec<T> from already encoded items."""
    encoded = list(items)
    return varint(len(encoded)) + b"".join(encoded)


def int_map(entries: Mapping[int, bytes]) -> bytes:
    """BTreeMap<integer key, T> from already encoded values, keys ascending."""
    return sequence(varint(key) + entries[key] for key in sorted(entries))


def module_value(instance_id: int, inner: bytes) -> bytes:
    """A module-typed value (DynRawFallback): instance id, then the inner encoding length-prefixed."""
    return varint(instance_id) + length_prefixed(inner)


# ---- bech32m without the 90-character limit -------------------------------------------------------


def _to_words(raw: bytes) -> list[int]:
    acc, bits, words = 0, 0, []
    for byte in raw:
        acc, bits = acc << 8 | byte, bits + 8
        while bits >= 5:
            bits -= 5
            words.append(acc >> bits & 31)
    if bits:
        words.append(acc << (5 - bits) & 31)
    return words


def _from_words(words: Sequence[int]) -> bytes:
    acc, bits, out = 0, 0, bytearray()
    for word in words:
        acc, bits = acc << 5 | word, bits + 5
        if bits >= 8:
            bits -= 8
            out.append(acc >> bits & 0xFF)
    if bits >= 5 or acc & ((1 << bits) - 1):
        raise EncodingError("non-zero padding in bech32 data")
    return bytes(out)


def bech32m_encode(hrp: str, raw: bytes) -> str:
    """The bech32m string of `raw` under `hrp` (any length)."""
    words = _to_words(raw)
    polymod = bech32_polymod(bech32_hrp_expand(hrp) + words + [0] * 6) ^ BECH32M_CONST
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[w] for w in words + checksum)


def bech32m_decode(value: str) -> tuple[str, bytes]:
    """The hrp and bytes of a bech32m string."""
    value = value.lower()
    sep = value.rfind("1")
    if sep < 1 or len(value) - sep < 7 or any(c not in CHARSET for c in value[sep + 1 :]):
        raise EncodingError("not bech32")
    hrp, words = value[:sep], [CHARSET.index(c) for c in value[sep + 1 :]]
    if bech32_polymod(bech32_hrp_expand(hrp) + words) != BECH32M_CONST:
        raise EncodingError("bad bech32m checksum")
    return hrp, _from_words(words[:-6])


# ---- invite codes, federation id ------------------------------------------------------------------


@dataclass(frozen=True)
class PeerEndpoint:
    """One guardian's API endpoint as the client config lists it."""

    url: str
    name: str


def federation_id(api_endpoints: Mapping[int, PeerEndpoint]) -> bytes:
    """sha256 of the consensus encoding of BTreeMap<PeerId, PeerUrl{url, name}>."""
    encoded = int_map({peer: text(e.url) + text(e.name) for peer, e in api_endpoints.items()})
    return hashlib.sha256(encoded).digest()


def encode_invite(peers: Mapping[int, str], fed_id: bytes, api_secret: str | None = None) -> str:
    """An invite code: Api{url, peer} parts, then FederationId, then ApiSecret if given."""
    parts = [enum_variant(0, text(url) + varint(peer)) for peer, url in sorted(peers.items())]
    parts.append(enum_variant(1, fed_id))
    if api_secret is not None:
        parts.append(enum_variant(2, text(api_secret)))
    return bech32m_encode(INVITE_HRP, sequence(parts))


def decode_invite(invite: str) -> tuple[dict[int, str], bytes | None]:
    """The peers and federation id of an invite code (other parts are skipped)."""
    hrp, raw = bech32m_decode(invite)
    if hrp != INVITE_HRP:
        raise EncodingError(f"not an invite code (hrp {hrp!r})")
    count, pos = read_varint(raw, 0)
    peers: dict[int, str] = {}
    fed_id = None
    for _ in range(count):
        variant, pos = read_varint(raw, pos)
        length, pos = read_varint(raw, pos)
        body, pos = raw[pos : pos + length], pos + length
        if variant == 0:
            url_len, inner = read_varint(body, 0)
            url = body[inner : inner + url_len].decode()
            peer, _ = read_varint(body, inner + url_len)
            peers[peer] = url
        elif variant == 1:
            fed_id = body
    if pos != len(raw):
        raise EncodingError("trailing bytes in invite code")
    return peers, fed_id


# ---- mint module -----------------------------------------------------------------------------------


def tiered(entries: Mapping[int, bytes]) -> bytes:
    """Tiered<T> = BTreeMap<Amount (msat), T>."""
    return int_map(entries)


def mint_client_config(
    *,
    denominations: Iterable[int],
    aggregate_pk: bytes,
    peer_pk_shares: Mapping[int, bytes],
    fee_base_msat: int = 0,
    fee_ppm: int = 0,
    max_notes_per_denomination: int = 3,
) -> bytes:
    """MintClientConfig{tbs_pks, fee_consensus{base, ppm}, peer_tbs_pks, max_notes_per_denomination}.

    Every denomination uses the same key here (fine for a probe, not for a mint).
    """
    amounts = sorted(set(denominations))
    return (
        tiered(dict.fromkeys(amounts, aggregate_pk))
        + varint(fee_base_msat)
        + varint(fee_ppm)
        + int_map({peer: tiered(dict.fromkeys(amounts, pk)) for peer, pk in peer_pk_shares.items()})
        + varint(max_notes_per_denomination)
    )


def client_module_config(
    kind: str, instance_id: int, version: tuple[int, int], inner: bytes
) -> dict[str, Any]:
    """One entry of the client config's "modules": {"kind", "version", "config": hex}."""
    return {
        "kind": kind,
        "version": {"major": version[0], "minor": version[1]},
        "config": module_value(instance_id, inner).hex(),
    }


@dataclass(frozen=True)
class SpendableNote:
    """An e-cash note the holder can spend: amount, signature (G1), spend secret key."""

    amount_msat: int
    signature: bytes
    spend_secret: bytes


def oob_notes(
    notes: Sequence[SpendableNote], fed_id: bytes, invite_peers: Mapping[int, str] | None = None
) -> str:
    """OOBNotes as text: base64url (padded) of Vec<OOBNotesPart>.

    Parts: 0 Notes(TieredMulti<SpendableNote{signature, spend_key}>), then 1 FederationIdPrefix
    (first 4 bytes of the id), or 2 Invite{peer_apis: Vec<(PeerId, url)>, federation_id} if peers given.
    """
    by_amount: dict[int, list[SpendableNote]] = {}
    for note in notes:
        by_amount.setdefault(note.amount_msat, []).append(note)
    multi = int_map(
        {amount: sequence(n.signature + n.spend_secret for n in group) for amount, group in by_amount.items()}
    )
    parts = [enum_variant(0, multi)]
    if invite_peers is None:
        parts.append(enum_variant(1, fed_id[:4]))
    else:
        peer_apis = sequence(varint(peer) + text(url) for peer, url in sorted(invite_peers.items()))
        parts.append(enum_variant(2, peer_apis + fed_id))
    return base64.urlsafe_b64encode(sequence(parts)).decode()


# ---- transactions (reading what the client submits) -------------------------------------------------


@dataclass(frozen=True)
class ModuleItem:
    """One input or output of a transaction: module instance id and its inner encoding."""

    instance_id: int
    body: bytes

    def variant(self) -> tuple[int, bytes]:
        """The versioned enum inside (V0 = 0) and that variant's field bytes."""
        index, pos = read_varint(self.body, 0)
        length, pos = read_varint(self.body, pos)
        return index, self.body[pos : pos + length]


@dataclass(frozen=True)
class Transaction:
    """Transaction{inputs, outputs, nonce: [u8; 8], signatures: NaiveMultisig(Vec<schnorr sig>)}."""

    inputs: tuple[ModuleItem, ...]
    outputs: tuple[ModuleItem, ...]
    nonce: bytes
    signatures: tuple[bytes, ...]
    txid: bytes  # sha256(enc(inputs) || enc(outputs) || nonce)


def _module_items(data: bytes, pos: int) -> tuple[tuple[ModuleItem, ...], int]:
    count, pos = read_varint(data, pos)
    items = []
    for _ in range(count):
        instance_id, pos = read_varint(data, pos)
        length, pos = read_varint(data, pos)
        items.append(ModuleItem(instance_id, data[pos : pos + length]))
        pos += length
    return tuple(items), pos


def decode_transaction(raw: bytes) -> Transaction:
    """A transaction's consensus encoding."""
    inputs, pos = _module_items(raw, 0)
    outputs, pos = _module_items(raw, pos)
    nonce, pos = raw[pos : pos + 8], pos + 8
    txid = hashlib.sha256(raw[:pos]).digest()
    variant, pos = read_varint(raw, pos)
    length, pos = read_varint(raw, pos)
    body = raw[pos : pos + length]
    if variant != 0 or pos + length != len(raw):
        raise EncodingError(f"unexpected signature variant {variant} or trailing bytes")
    count, at = read_varint(body, 0)
    signatures = tuple(body[at + 64 * i : at + 64 * (i + 1)] for i in range(count))
    return Transaction(inputs, outputs, nonce, signatures, txid)


def decode_serde_module_encoding(hex_text: str) -> bytes:
    """The bytes inside a SerdeModuleEncoding hex string: varint length, then the encoding."""
    raw = bytes.fromhex(hex_text)
    length, pos = read_varint(raw, 0)
    if pos + length != len(raw):
        raise EncodingError("SerdeModuleEncoding length prefix does not match")
    return raw[pos:]


@dataclass(frozen=True)
class DecodedOobNotes:
    """What an OOBNotes string holds (parts other than notes and the federation id are skipped)."""

    notes: tuple[SpendableNote, ...]
    federation_id_prefix: bytes | None
    part_order: tuple[int, ...]


def decode_oob_notes(value: str) -> DecodedOobNotes:
    """Read base64url OOBNotes, padded or not (the client writes them padded, prefix part first)."""
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    count, pos = read_varint(raw, 0)
    notes: list[SpendableNote] = []
    prefix = None
    order = []
    for _ in range(count):
        variant, pos = read_varint(raw, pos)
        length, pos = read_varint(raw, pos)
        body, pos = raw[pos : pos + length], pos + length
        order.append(variant)
        if variant == 1:
            prefix = body
        elif variant == 0:
            tiers, at = read_varint(body, 0)
            for _ in range(tiers):
                amount, at = read_varint(body, at)
                n, at = read_varint(body, at)
                for _ in range(n):
                    notes.append(SpendableNote(amount, body[at : at + 48], body[at + 48 : at + 80]))
                    at += 80
    return DecodedOobNotes(tuple(notes), prefix, tuple(order))
