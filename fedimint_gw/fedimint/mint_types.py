"""The mint module's consensus types (`modules/fedimint-mint-common`, v0.5+ layout).

- `Amount { msats: u64 }` is a varint; `Tiered<T>` is `BTreeMap<Amount, T>`;
  `TieredMulti<T>` is `BTreeMap<Amount, Vec<T>>`.
- `MintClientConfig { tbs_pks: Tiered<G2>, fee_consensus: FeeConsensus { base: Amount,
  parts_per_million: u64 }, peer_tbs_pks: BTreeMap<PeerId, Tiered<G2>>,
  max_notes_per_denomination: u16 }`. Older releases had a different `FeeConsensus`
  (`note_issuance_abs`, `note_spend_abs`); the base + ppm form is what v0.5-v0.7 sources show.
- `Nonce` = secp256k1 public key (33 bytes), `Note { nonce, signature: G1 (48) }`,
  `BlindNonce` = G1 (48).
- Versioned types are enums `V0(..)` + a default variant: `MintInput::V0 { amount, note }`,
  `MintOutput::V0 { amount, blind_nonce }`, `MintOutputOutcome::V0(share: G1)`.
BLS points are kept as raw compressed bytes here; checking them is the crypto package's job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fedimint_gw.fedimint.encoding import U64_MAX, Reader, UnknownVariant, Writer, decode_whole, encode

G1_LEN = 48
G2_LEN = 96
PUBKEY_LEN = 33
SECRET_KEY_LEN = 32
MINT_KIND = "mint"


def read_tiered_g2(r: Reader) -> dict[int, bytes]:
    """`Tiered<G2>`: amount (msat) -> 96-byte compressed G2 point."""
    return r.btree_map(Reader.u64, lambda x: x.fixed(G2_LEN))


def write_tiered_g2(w: Writer, tiers: Mapping[int, bytes]) -> None:
    w.btree_map(tiers, Writer.u64, lambda ww, pk: ww.fixed(pk, G2_LEN))


@dataclass(frozen=True)
class FeeConsensus:
    """Mint fees: `base` msat per note input/output plus `parts_per_million` of its amount."""

    base: int
    parts_per_million: int

    @classmethod
    def new(cls, parts_per_million: int) -> FeeConsensus:
        """Upstream `FeeConsensus::new`: 100 msat base, at most 1000 ppm."""
        if not 0 <= parts_per_million <= 1_000:
            raise ValueError("relative fee over one thousand parts per million is excessive")
        return cls(100, parts_per_million)

    def fee(self, amount_msat: int) -> int:
        """Fee for one input or output of `amount_msat` (upstream `fee_msats`, u64 saturating)."""
        product = min(amount_msat * self.parts_per_million, U64_MAX)
        return product // 1_000_000 + self.base


@dataclass(frozen=True)
class MintClientConfig:
    """The mint module's client config; public keys are raw 96-byte G2 points."""

    tbs_pks: Mapping[int, bytes]
    fee_consensus: FeeConsensus
    peer_tbs_pks: Mapping[int, Mapping[int, bytes]]
    max_notes_per_denomination: int

    @property
    def denominations(self) -> tuple[int, ...]:
        return tuple(sorted(self.tbs_pks))

    def to_bytes(self) -> bytes:
        return encode(self.write)

    def write(self, w: Writer) -> None:
        write_tiered_g2(w, self.tbs_pks)
        w.u64(self.fee_consensus.base).u64(self.fee_consensus.parts_per_million)
        w.btree_map(self.peer_tbs_pks, Writer.u16, write_tiered_g2)
        w.u16(self.max_notes_per_denomination)

    @classmethod
    def read(cls, r: Reader) -> MintClientConfig:
        tbs_pks = read_tiered_g2(r)
        fee = FeeConsensus(r.u64(), r.u64())
        peer_pks = r.btree_map(Reader.u16, read_tiered_g2)
        return cls(tbs_pks, fee, peer_pks, r.u16())

    @classmethod
    def from_bytes(cls, data: bytes) -> MintClientConfig:
        return decode_whole(data, cls.read)


@dataclass(frozen=True)
class Note:
    """An e-cash note: its nonce (the spend key's public key) and the mint's G1 signature."""

    nonce: bytes
    signature: bytes

    def write(self, w: Writer) -> None:
        w.fixed(self.nonce, PUBKEY_LEN).fixed(self.signature, G1_LEN)

    @classmethod
    def read(cls, r: Reader) -> Note:
        return cls(r.fixed(PUBKEY_LEN), r.fixed(G1_LEN))


@dataclass(frozen=True)
class MintInputV0:
    """Spend one note of `amount` msat."""

    amount: int
    note: Note


@dataclass(frozen=True)
class MintOutputV0:
    """Ask for one note of `amount` msat, blind-signed over `blind_nonce` (G1)."""

    amount: int
    blind_nonce: bytes


@dataclass(frozen=True)
class MintOutputOutcomeV0:
    """One guardian's blind signature share (G1) for a MintOutput."""

    share: bytes


MintInput = MintInputV0 | UnknownVariant
MintOutput = MintOutputV0 | UnknownVariant
MintOutputOutcome = MintOutputOutcomeV0 | UnknownVariant


def write_mint_input(w: Writer, value: MintInput) -> None:
    if isinstance(value, UnknownVariant):
        w.unknown(value)
        return

    def body(b: Writer) -> None:
        b.u64(value.amount)
        value.note.write(b)

    w.variant(0, encode(body))


def read_mint_input(r: Reader) -> MintInput:
    return r.enum({0: lambda b: MintInputV0(b.u64(), Note.read(b))})


def write_mint_output(w: Writer, value: MintOutput) -> None:
    if isinstance(value, UnknownVariant):
        w.unknown(value)
        return
    w.variant(0, encode(lambda b: b.u64(value.amount).fixed(value.blind_nonce, G1_LEN)))


def read_mint_output(r: Reader) -> MintOutput:
    return r.enum({0: lambda b: MintOutputV0(b.u64(), b.fixed(G1_LEN))})


def write_mint_output_outcome(w: Writer, value: MintOutputOutcome) -> None:
    if isinstance(value, UnknownVariant):
        w.unknown(value)
        return
    w.variant(0, encode(lambda b: b.fixed(value.share, G1_LEN)))


def read_mint_output_outcome(r: Reader) -> MintOutputOutcome:
    return r.enum({0: lambda b: MintOutputOutcomeV0(b.fixed(G1_LEN))})


@dataclass(frozen=True)
class SpendableNote:
    """A note its holder can spend: the mint's signature (G1) and the 32-byte spend secret key."""

    signature: bytes
    spend_key: bytes

    def write(self, w: Writer) -> None:
        w.fixed(self.signature, G1_LEN).fixed(self.spend_key, SECRET_KEY_LEN)

    @classmethod
    def read(cls, r: Reader) -> SpendableNote:
        return cls(r.fixed(G1_LEN), r.fixed(SECRET_KEY_LEN))


def read_tiered_multi_notes(r: Reader) -> dict[int, tuple[SpendableNote, ...]]:
    """`TieredMulti<SpendableNote>`: amount -> notes of that denomination."""
    return r.btree_map(Reader.u64, lambda x: x.vec(SpendableNote.read))


def write_tiered_multi_notes(w: Writer, notes: Mapping[int, tuple[SpendableNote, ...]]) -> None:
    w.btree_map(notes, Writer.u64, lambda ww, items: ww.vec(items, lambda w3, n: n.write(w3)))
