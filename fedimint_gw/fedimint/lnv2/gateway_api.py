"""The JSON bodies of Fedimint's LNv2 gateway routes (``fedimint-lnv2-common/src/gateway_api.rs``).

    POST /routing_info           body: federation id (bare JSON string) -> RoutingInfo | null
    POST /create_bolt11_invoice  {federation_id, contract, amount, description, expiry_secs}
                                 -> bolt11 (bare JSON string)
    POST /send_payment           {federation_id, outpoint, contract, invoice: {"Bolt11": s}, auth}
                                 -> {"Ok": [32 ints]} | {"Err": forfeit signature hex}

Parsing is strict (every failure a :class:`DecodeError`); the auth signature is checked by the
caller with :meth:`OutgoingContract.verify_invoice_auth` over :func:`invoice_auth_message`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from fedimint_gw.fedimint import json_fields as jf
from fedimint_gw.fedimint.encoding import U32_MAX, U64_MAX
from fedimint_gw.fedimint.errors import DecodeError
from fedimint_gw.fedimint.lnv2.contracts import IncomingContract, OutgoingContract
from fedimint_gw.fedimint.lnv2.keys import HASH_LEN, SIGNATURE_LEN
from fedimint_gw.fedimint.transaction import TXID_LEN, OutPoint

FEDERATION_ID_LEN = 32
MAX_DESCRIPTION_CHARS = 639
"""BOLT 11 caps a direct description at 639 bytes."""


def parse_federation_id(value: object) -> bytes:
    """A federation id as serde sends it: 64 hex characters."""
    return jf.hex_bytes(value, "federation_id", FEDERATION_ID_LEN)


@dataclass(frozen=True)
class PaymentFee:
    """``base`` msat plus ``parts_per_million`` of the amount."""

    base: int
    parts_per_million: int

    def fee(self, amount_msat: int) -> int:
        return amount_msat * self.parts_per_million // 1_000_000 + self.base

    def to_json(self) -> dict[str, object]:
        return {"base": self.base, "parts_per_million": self.parts_per_million}


@dataclass(frozen=True)
class RoutingInfo:
    """What a wallet needs to use this gateway for one federation."""

    lightning_public_key: bytes
    module_public_key: bytes
    send_fee_minimum: PaymentFee
    send_fee_default: PaymentFee
    expiration_delta_minimum: int
    expiration_delta_default: int
    receive_fee: PaymentFee
    lightning_alias: str | None = None
    receive_enabled: bool = True

    def to_json(self) -> dict[str, object]:
        """Newer gatewayds add ``lightning_alias`` (optional) and ``receive_enabled``; older
        clients ignore fields they do not know (serde's default), so both are always sent."""
        return {
            "lightning_public_key": self.lightning_public_key.hex(),
            "module_public_key": self.module_public_key.hex(),
            "send_fee_minimum": self.send_fee_minimum.to_json(),
            "send_fee_default": self.send_fee_default.to_json(),
            "expiration_delta_minimum": self.expiration_delta_minimum,
            "expiration_delta_default": self.expiration_delta_default,
            "receive_fee": self.receive_fee.to_json(),
            "lightning_alias": self.lightning_alias,
            "receive_enabled": self.receive_enabled,
        }


class DescriptionKind(Enum):
    DIRECT = "Direct"
    HASH = "Hash"


@dataclass(frozen=True)
class InvoiceDescription:
    """``{"Direct": text}`` or ``{"Hash": sha256 hex}``."""

    kind: DescriptionKind
    value: str

    @classmethod
    def from_json(cls, value: object) -> InvoiceDescription:
        data = jf.obj(value, "description")
        if len(data) != 1:
            raise DecodeError("description must have exactly one of Direct, Hash")
        if "Direct" in data:
            text = jf.text(data["Direct"], "description.Direct")
            if len(text.encode("utf-8")) > MAX_DESCRIPTION_CHARS:
                raise DecodeError(f"description.Direct is over {MAX_DESCRIPTION_CHARS} bytes")
            return cls(DescriptionKind.DIRECT, text)
        if "Hash" in data:
            return cls(DescriptionKind.HASH, jf.hex_bytes(data["Hash"], "description.Hash", HASH_LEN).hex())
        raise DecodeError("description must be Direct or Hash")


@dataclass(frozen=True)
class CreateBolt11InvoicePayload:
    federation_id: bytes
    contract: IncomingContract
    amount: int
    description: InvoiceDescription
    expiry_secs: int

    @classmethod
    def from_json(cls, value: object) -> CreateBolt11InvoicePayload:
        data = jf.obj(value, "create_bolt11_invoice payload")
        what = "create_bolt11_invoice"
        return cls(
            federation_id=parse_federation_id(jf.field(data, "federation_id", what)),
            contract=IncomingContract.from_json(jf.field(data, "contract", what)),
            amount=jf.integer(jf.field(data, "amount", what), "amount", U64_MAX),
            description=InvoiceDescription.from_json(jf.field(data, "description", what)),
            expiry_secs=jf.integer(jf.field(data, "expiry_secs", what), "expiry_secs", U32_MAX),
        )

    def to_json(self) -> dict[str, object]:
        return {
            "federation_id": self.federation_id.hex(),
            "contract": self.contract.to_json(),
            "amount": self.amount,
            "description": {self.description.kind.value: self.description.value},
            "expiry_secs": self.expiry_secs,
        }


def parse_outpoint(value: object) -> OutPoint:
    data = jf.obj(value, "outpoint")
    return OutPoint(
        jf.hex_bytes(jf.field(data, "txid", "outpoint"), "outpoint.txid", TXID_LEN),
        jf.integer(jf.field(data, "out_idx", "outpoint"), "outpoint.out_idx", U64_MAX),
    )


@dataclass(frozen=True)
class SendPaymentPayload:
    federation_id: bytes
    outpoint: OutPoint
    contract: OutgoingContract
    bolt11: str
    auth: bytes

    @classmethod
    def from_json(cls, value: object) -> SendPaymentPayload:
        data = jf.obj(value, "send_payment payload")
        what = "send_payment"
        invoice = jf.obj(jf.field(data, "invoice", what), "invoice")
        if set(invoice) != {"Bolt11"}:
            raise DecodeError('invoice must be {"Bolt11": "<bolt11>"}')
        return cls(
            federation_id=parse_federation_id(jf.field(data, "federation_id", what)),
            outpoint=parse_outpoint(jf.field(data, "outpoint", what)),
            contract=OutgoingContract.from_json(jf.field(data, "contract", what)),
            bolt11=jf.text(invoice["Bolt11"], "invoice.Bolt11"),
            auth=jf.hex_bytes(jf.field(data, "auth", what), "auth", SIGNATURE_LEN),
        )

    def to_json(self) -> dict[str, object]:
        return {
            "federation_id": self.federation_id.hex(),
            "outpoint": self.outpoint.to_json(),
            "contract": self.contract.to_json(),
            "invoice": {"Bolt11": self.bolt11},
            "auth": self.auth.hex(),
        }


class SendOutcomeKind(Enum):
    PAID = "Ok"
    FORFEITED = "Err"


@dataclass(frozen=True)
class SendOutcome:
    """``Result<[u8; 32], Signature>``: the preimage (paid) or the forfeit signature (cancel)."""

    kind: SendOutcomeKind
    data: bytes

    def __post_init__(self) -> None:
        size = HASH_LEN if self.kind is SendOutcomeKind.PAID else SIGNATURE_LEN
        if len(self.data) != size:
            raise DecodeError(f"a send outcome {self.kind.value} carries {size} bytes")

    def to_json(self) -> dict[str, object]:
        if self.kind is SendOutcomeKind.PAID:
            return {"Ok": list(self.data)}
        return {"Err": self.data.hex()}

    @classmethod
    def from_json(cls, value: object) -> SendOutcome:
        data = jf.obj(value, "send_payment answer")
        if set(data) == {"Ok"}:
            raw = data["Ok"]
            if not isinstance(raw, list) or len(raw) != HASH_LEN:
                raise DecodeError("Ok must be an array of 32 bytes")
            return cls(SendOutcomeKind.PAID, bytes(jf.integer(b, "Ok byte", 255) for b in raw))
        if set(data) == {"Err"}:
            return cls(SendOutcomeKind.FORFEITED, jf.hex_bytes(data["Err"], "Err", SIGNATURE_LEN))
        raise DecodeError('a send_payment answer is {"Ok": ...} or {"Err": ...}')
