"""LNv1 inputs, outputs, outcomes and the client config (`fedimint-ln-common/src/lib.rs`).

    LightningInput::V0 { contract_id: [u8; 32], amount: Amount, witness: Option<Preimage [u8; 32]> }
    LightningOutput::V0 = Contract(ContractOutput { amount, contract }) (0)
                        | Offer(IncomingContractOffer) (1)
                        | CancelOutgoing { contract: ContractId, gateway_signature: [u8; 64] } (2)
    LightningOutputOutcome::V0 = Contract { id, outcome: ContractOutcome } (0) | Offer { id } (1)
                               | CancelOutgoingContract { id } (2)
    ContractOutcome = Incoming(DecryptedPreimage) (0) | Outgoing(OutgoingContractOutcome {}) (1)
    LightningClientConfig { threshold_pub_key: G1 (48), fee_consensus: { contract_input: Amount,
                            contract_output: Amount }, network: u32 magic (little-endian) as varint }
Each versioned enum keeps unknown variants (`UnknownVariant`), as upstream's default variant.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fedimint_gw.fedimint.encoding import Reader, UnknownVariant, Writer, decode_whole, encode
from fedimint_gw.fedimint.ln.contracts import (
    HASH_LEN,
    SCHNORR_LEN,
    Contract,
    DecryptedPreimage,
    IncomingContractOffer,
    read_contract,
    write_contract,
)

LN_KIND = "ln"
G1_LEN = 48
PREIMAGE_LEN = 32
REGTEST_MAGIC = 0xDAB5BFFA
"""Bitcoin regtest's network magic (bytes fa bf b5 da) read as a little-endian u32."""


@dataclass(frozen=True)
class LightningInputV0:
    """Spend a contract account: the gateway claims with `witness` (the preimage) or the owner
    signs alone (refunds, incoming claims)."""

    contract_id: bytes
    amount: int
    witness: bytes | None = None

    def write(self, w: Writer) -> None:
        w.fixed(self.contract_id, HASH_LEN).u64(self.amount)
        w.option(self.witness, lambda ww, p: ww.fixed(p, PREIMAGE_LEN))

    @classmethod
    def read(cls, r: Reader) -> LightningInputV0:
        return cls(r.fixed(HASH_LEN), r.u64(), r.option(lambda x: x.fixed(PREIMAGE_LEN)))


@dataclass(frozen=True)
class ContractOutput:
    """Fund `contract` with `amount` msat."""

    amount: int
    contract: Contract


@dataclass(frozen=True)
class CancelOutgoing:
    """The gateway gives up an outgoing contract early (signature over its cancellation message)."""

    contract_id: bytes
    gateway_signature: bytes


LightningOutputV0 = ContractOutput | IncomingContractOffer | CancelOutgoing
LightningInput = LightningInputV0 | UnknownVariant
LightningOutput = LightningOutputV0 | UnknownVariant


def write_ln_input(w: Writer, value: LightningInput) -> None:
    if isinstance(value, UnknownVariant):
        w.unknown(value)
    else:
        w.variant(0, encode(value.write))


def read_ln_input(r: Reader) -> LightningInput:
    return r.enum({0: LightningInputV0.read})


def _write_output_v0(w: Writer, value: LightningOutputV0) -> None:
    if isinstance(value, ContractOutput):
        contract = value.contract

        def fund(b: Writer) -> None:
            b.u64(value.amount)
            write_contract(b, contract)

        w.variant(0, encode(fund))
    elif isinstance(value, IncomingContractOffer):
        w.variant(1, encode(value.write))
    else:
        cancel = encode(
            lambda b: b.fixed(value.contract_id, HASH_LEN).fixed(value.gateway_signature, SCHNORR_LEN)
        )
        w.variant(2, cancel)


def _read_contract_output(r: Reader) -> LightningOutputV0:
    return ContractOutput(r.u64(), read_contract(r))


def _read_offer(r: Reader) -> LightningOutputV0:
    return IncomingContractOffer.read(r)


def _read_cancel(r: Reader) -> LightningOutputV0:
    return CancelOutgoing(r.fixed(HASH_LEN), r.fixed(SCHNORR_LEN))


def _read_output_v0(r: Reader) -> LightningOutputV0:
    return r.strict_enum({0: _read_contract_output, 1: _read_offer, 2: _read_cancel}, "LightningOutputV0")


def write_ln_output(w: Writer, value: LightningOutput) -> None:
    if isinstance(value, UnknownVariant):
        w.unknown(value)
    else:
        w.variant(0, encode(lambda b: _write_output_v0(b, value)))


def read_ln_output(r: Reader) -> LightningOutput:
    return r.enum({0: _read_output_v0})


def ln_output_bytes(value: LightningOutput) -> bytes:
    return encode(lambda w: write_ln_output(w, value))


def ln_output_from_bytes(data: bytes) -> LightningOutput:
    return decode_whole(data, read_ln_output)


def ln_input_bytes(value: LightningInput) -> bytes:
    return encode(lambda w: write_ln_input(w, value))


def ln_input_from_bytes(data: bytes) -> LightningInput:
    return decode_whole(data, read_ln_input)


@dataclass(frozen=True)
class ContractOutcomeV0:
    """`Contract { id, outcome }`: `preimage` is the incoming decryption state; None for outgoing."""

    contract_id: bytes
    preimage: DecryptedPreimage | None


@dataclass(frozen=True)
class OfferOutcomeV0:
    offer_id: bytes


@dataclass(frozen=True)
class CancelOutcomeV0:
    contract_id: bytes


LightningOutputOutcome = ContractOutcomeV0 | OfferOutcomeV0 | CancelOutcomeV0 | UnknownVariant


def write_ln_outcome(w: Writer, value: LightningOutputOutcome) -> None:
    if isinstance(value, UnknownVariant):
        w.unknown(value)
        return

    def v0(b: Writer) -> None:
        if isinstance(value, ContractOutcomeV0):
            pre = value.preimage

            def outcome(o: Writer) -> None:
                if pre is None:
                    o.variant(1, b"")
                else:
                    o.variant(0, encode(pre.write))

            def contract(x: Writer) -> None:
                x.fixed(value.contract_id, HASH_LEN)
                outcome(x)

            b.variant(0, encode(contract))
        elif isinstance(value, OfferOutcomeV0):
            b.variant(1, encode(lambda x: x.fixed(value.offer_id, HASH_LEN)))
        else:
            b.variant(2, encode(lambda x: x.fixed(value.contract_id, HASH_LEN)))

    w.variant(0, encode(v0))


def _read_contract_outcome(r: Reader) -> ContractOutcomeV0:
    cid = r.fixed(HASH_LEN)
    pre: DecryptedPreimage | None = r.strict_enum(
        {0: DecryptedPreimage.read, 1: lambda _b: None}, "ContractOutcome"
    )
    return ContractOutcomeV0(cid, pre)


OutcomeV0 = ContractOutcomeV0 | OfferOutcomeV0 | CancelOutcomeV0


def _read_offer_outcome(r: Reader) -> OutcomeV0:
    return OfferOutcomeV0(r.fixed(HASH_LEN))


def _read_cancel_outcome(r: Reader) -> OutcomeV0:
    return CancelOutcomeV0(r.fixed(HASH_LEN))


def _read_outcome_v0(r: Reader) -> OutcomeV0:
    variants: dict[int, Callable[[Reader], OutcomeV0]] = {
        0: _read_contract_outcome,
        1: _read_offer_outcome,
        2: _read_cancel_outcome,
    }
    return r.strict_enum(variants, "LightningOutputOutcomeV0")


def read_ln_outcome(r: Reader) -> LightningOutputOutcome:
    return r.enum({0: _read_outcome_v0})


@dataclass(frozen=True)
class LightningClientConfig:
    """The `ln` module's client config: the federation's threshold_crypto key (G1), fees, network."""

    threshold_pub_key: bytes
    contract_input_fee: int
    contract_output_fee: int
    network_magic: int = REGTEST_MAGIC

    def write(self, w: Writer) -> None:
        w.fixed(self.threshold_pub_key, G1_LEN).u64(self.contract_input_fee).u64(self.contract_output_fee)
        w.u32(self.network_magic)

    @classmethod
    def read(cls, r: Reader) -> LightningClientConfig:
        return cls(r.fixed(G1_LEN), r.u64(), r.u64(), r.u32())

    def to_bytes(self) -> bytes:
        return encode(self.write)

    @classmethod
    def from_bytes(cls, data: bytes) -> LightningClientConfig:
        return decode_whole(data, cls.read)
