"""LNv2 transaction items (``fedimint-lnv2-common/src/lib.rs``, consensus version 1.0):

    LightningInput  = V0(LightningInputV0) | Default        (extensible: unknown variants kept)
    LightningInputV0 = Outgoing(OutPoint, OutgoingWitness) | Incoming(OutPoint, AggregateDecryptionKey)
    OutgoingWitness = Claim([u8; 32]) | Refund | Cancel(schnorr::Signature)
    LightningOutput = V0(LightningOutputV0) | Default
    LightningOutputV0 = Outgoing(OutgoingContract) | Incoming(IncomingContract)
    LightningOutputOutcome = unit struct (nothing to say)
    LightningInvoice = Bolt11(Bolt11Invoice)                (the invoice encodes as its string)

Inputs name the funding out point of a contract (older releases named the contract id).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum

from fedimint_gw.crypto.bls import tpe
from fedimint_gw.crypto.errors import CryptoError
from fedimint_gw.fedimint.encoding import Reader, UnknownVariant, Writer, decode_whole, encode
from fedimint_gw.fedimint.errors import DecodeError
from fedimint_gw.fedimint.lnv2.contracts import IncomingContract, OutgoingContract
from fedimint_gw.fedimint.lnv2.keys import SIGNATURE_LEN
from fedimint_gw.fedimint.transaction import OutPoint

PREIMAGE_LEN = 32
G1_LEN = 48


class WitnessKind(Enum):
    """How an outgoing contract is spent (the variant index upstream)."""

    CLAIM = 0
    REFUND = 1
    CANCEL = 2


@dataclass(frozen=True)
class OutgoingWitness:
    """``Claim(preimage)`` by the gateway, ``Refund`` after expiry, ``Cancel(forfeit signature)``."""

    kind: WitnessKind
    data: bytes = b""

    def __post_init__(self) -> None:
        size = {WitnessKind.CLAIM: PREIMAGE_LEN, WitnessKind.REFUND: 0, WitnessKind.CANCEL: SIGNATURE_LEN}
        if len(self.data) != size[self.kind]:
            raise DecodeError(f"a {self.kind.name.lower()} witness carries {size[self.kind]} bytes")

    def write(self, w: Writer) -> None:
        w.variant(self.kind.value, self.data)

    @classmethod
    def read(cls, r: Reader) -> OutgoingWitness:
        return r.strict_enum(
            {
                0: lambda b: cls(WitnessKind.CLAIM, b.fixed(PREIMAGE_LEN)),
                1: lambda b: cls(WitnessKind.REFUND),
                2: lambda b: cls(WitnessKind.CANCEL, b.fixed(SIGNATURE_LEN)),
            },
            "OutgoingWitness",
        )


@dataclass(frozen=True)
class OutgoingInput:
    """``LightningInputV0::Outgoing``: spend the outgoing contract funded at ``outpoint``."""

    outpoint: OutPoint
    witness: OutgoingWitness


@dataclass(frozen=True)
class IncomingInput:
    """``LightningInputV0::Incoming``: spend an incoming contract with its aggregate key."""

    outpoint: OutPoint
    agg_dk: tpe.AggregateDecryptionKey


LightningInput = OutgoingInput | IncomingInput | UnknownVariant


def write_input(w: Writer, value: LightningInput) -> None:
    if isinstance(value, UnknownVariant):
        w.unknown(value)
        return

    body = Writer()
    value.outpoint.write(body)
    if isinstance(value, OutgoingInput):
        value.witness.write(body)
        index = 0
    else:
        body.raw(value.agg_dk.encode())
        index = 1
    w.variant(0, encode(lambda b: b.variant(index, body.getvalue())))


def _read_agg_dk(r: Reader) -> tpe.AggregateDecryptionKey:
    try:
        return tpe.AggregateDecryptionKey.decode(r.fixed(G1_LEN))
    except CryptoError as exc:
        raise DecodeError(f"invalid aggregate decryption key: {exc}") from None


def read_input(r: Reader) -> LightningInput:
    def outgoing(x: Reader) -> OutgoingInput | IncomingInput:
        return OutgoingInput(OutPoint.read(x), OutgoingWitness.read(x))

    def incoming(x: Reader) -> OutgoingInput | IncomingInput:
        return IncomingInput(OutPoint.read(x), _read_agg_dk(x))

    def v0(b: Reader) -> OutgoingInput | IncomingInput:
        return b.strict_enum({0: outgoing, 1: incoming}, "LightningInputV0")

    return r.enum({0: v0})


LightningOutput = OutgoingContract | IncomingContract | UnknownVariant


def write_output(w: Writer, value: LightningOutput) -> None:
    if isinstance(value, UnknownVariant):
        w.unknown(value)
        return
    index = 0 if isinstance(value, OutgoingContract) else 1
    body = encode(value.write)
    w.variant(0, encode(lambda b: b.variant(index, body)))


def read_output(r: Reader) -> LightningOutput:
    def outgoing(x: Reader) -> OutgoingContract | IncomingContract:
        return OutgoingContract.read(x)

    def incoming(x: Reader) -> OutgoingContract | IncomingContract:
        return IncomingContract.read(x)

    def v0(b: Reader) -> OutgoingContract | IncomingContract:
        return b.strict_enum({0: outgoing, 1: incoming}, "LightningOutputV0")

    return r.enum({0: v0})


def input_bytes(value: LightningInput) -> bytes:
    return encode(lambda w: write_input(w, value))


def input_from_bytes(data: bytes) -> LightningInput:
    return decode_whole(data, read_input)


def output_bytes(value: LightningOutput) -> bytes:
    return encode(lambda w: write_output(w, value))


def output_from_bytes(data: bytes) -> LightningOutput:
    return decode_whole(data, read_output)


def invoice_bytes(bolt11: str) -> bytes:
    """``LightningInvoice::Bolt11(invoice)``: variant 0 around the invoice's string encoding.

    Upstream encodes ``invoice.to_string()``, the canonical lower-case form, so the text is
    lower-cased here (a valid bolt11 string is single-case).
    """
    return encode(lambda w: w.variant(0, encode(lambda b: b.string(bolt11.lower()))))


def invoice_auth_message(bolt11: str) -> bytes:
    """What the sender signs with ``refund_pk`` for ``/send_payment``: sha256 of the encoding."""
    return hashlib.sha256(invoice_bytes(bolt11)).digest()
