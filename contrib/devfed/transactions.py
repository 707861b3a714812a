"""Transaction wire format: parsing and validation of shape (not of state).

A transaction is ``{"inputs": [...], "outputs": [...], "signatures": [hex | null, ...]}``.
Its id is ``sha256(canonical_json({"inputs": inputs, "outputs": outputs}))`` (signatures are
not covered; a faucet transaction adds ``"faucet": true`` to the hashed body).
Every contract input needs ``signatures[i]`` = :func:`contrib.devfed.codec.sign` with purpose
``"input"`` over ``{"txid": txid, "input_index": i}`` by the key that input's spend condition
names; note inputs take ``null``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from contrib.devfed.codec import (
    as_list,
    as_object,
    bad,
    get_hex,
    get_int,
    get_pubkey,
    get_str,
    object_id,
)
from contrib.devfed.config import DENOMINATIONS
from fedimint_gw.crypto.errors import CryptoError
from fedimint_gw.crypto.threshold_elgamal import Ciphertext

_DENOMS = frozenset(DENOMINATIONS)


class InputKind(Enum):
    """What an input spends."""

    NOTE = "note"
    OUTGOING_CLAIM = "outgoing_claim"
    OUTGOING_REFUND = "outgoing_refund"
    INCOMING_CLAIM = "incoming_claim"
    INCOMING_REFUND = "incoming_refund"


class OutputKind(Enum):
    """What an output creates."""

    NOTE = "note"
    OUTGOING_CONTRACT = "outgoing_contract"
    INCOMING_CONTRACT_V1 = "incoming_contract_v1"
    INCOMING_CONTRACT_V2 = "incoming_contract_v2"


@dataclass(frozen=True)
class TxInput:
    """One validated input; ``body`` is its JSON exactly as hashed."""

    kind: InputKind
    body: Mapping[str, object]

    @property
    def contract_id(self) -> str:
        """The contract spent (contract inputs only)."""
        return str(self.body["contract_id"])


@dataclass(frozen=True)
class TxOutput:
    """One validated output; ``body`` is its JSON exactly as hashed (and the contract body)."""

    kind: OutputKind
    body: Mapping[str, object]

    @property
    def amount_msat(self) -> int:
        """The amount this output takes."""
        return int(str(self.body["amount_msat"]))

    @property
    def contract_id(self) -> str:
        """For contract outputs: ``sha256(canonical_json(output))``."""
        return object_id(dict(self.body))


@dataclass(frozen=True)
class Transaction:
    """A shape-checked transaction."""

    inputs: tuple[TxInput, ...]
    outputs: tuple[TxOutput, ...]
    signatures: tuple[str | None, ...]
    faucet: bool = False

    def id_body(self) -> dict[str, object]:
        """The JSON whose canonical hash is the transaction id."""
        body: dict[str, object] = {
            "inputs": [dict(i.body) for i in self.inputs],
            "outputs": [dict(o.body) for o in self.outputs],
        }
        if self.faucet:
            body["faucet"] = True
        return body

    @property
    def txid(self) -> str:
        """The transaction id."""
        return object_id(self.id_body())

    def to_dict(self) -> dict[str, object]:
        """The wire form (with signatures)."""
        body = self.id_body()
        body["signatures"] = list(self.signatures)
        return body


def _ciphertext(value: object, what: str) -> dict[str, str]:
    try:
        return Ciphertext.from_dict(value).to_dict()
    except CryptoError as exc:
        raise bad(f"{what}: {exc}") from None


def parse_input(raw: object, i: int) -> TxInput:
    """Validate one input's shape."""
    what = f"inputs[{i}]"
    data = as_object(raw, what)
    try:
        kind = InputKind(get_str(data, "kind", what))
    except ValueError:
        raise bad(f"{what}.kind must be one of {[k.value for k in InputKind]}") from None
    body: dict[str, object] = {"kind": kind.value}
    if kind is InputKind.NOTE:
        amount = get_int(data, "amount_msat", what, 1)
        if amount not in _DENOMS:
            raise bad(f"{what}.amount_msat must be a power-of-two denomination")
        body.update(
            amount_msat=amount, secret=get_hex(data, "secret", what, 32), C=get_pubkey(data, "C", what)
        )
    else:
        body["contract_id"] = get_hex(data, "contract_id", what, 32)
        if kind is InputKind.OUTGOING_CLAIM:
            body["preimage"] = get_hex(data, "preimage", what, 32)
        if kind is InputKind.OUTGOING_REFUND and data.get("forfeit_signature") is not None:
            body["forfeit_signature"] = get_str(data, "forfeit_signature", what)
    return TxInput(kind, body)


def parse_output(raw: object, i: int) -> TxOutput:
    """Validate one output's shape."""
    what = f"outputs[{i}]"
    data = as_object(raw, what)
    try:
        kind = OutputKind(get_str(data, "kind", what))
    except ValueError:
        raise bad(f"{what}.kind must be one of {[k.value for k in OutputKind]}") from None
    body: dict[str, object] = {"kind": kind.value, "amount_msat": get_int(data, "amount_msat", what, 1)}
    if kind is OutputKind.NOTE:
        if body["amount_msat"] not in _DENOMS:
            raise bad(f"{what}.amount_msat must be a power-of-two denomination")
        body["B_"] = get_pubkey(data, "B_", what)
        return TxOutput(kind, body)
    body["payment_hash"] = get_hex(data, "payment_hash", what, 32)
    body["refund_pubkey"] = get_pubkey(data, "refund_pubkey", what)
    if kind is OutputKind.OUTGOING_CONTRACT:
        body["gateway_pubkey"] = get_pubkey(data, "gateway_pubkey", what)
        body["timelock_height"] = get_int(data, "timelock_height", what, 1)
    elif kind is OutputKind.INCOMING_CONTRACT_V2:
        body["claim_pubkey"] = get_pubkey(data, "claim_pubkey", what)
        body["expiration_height"] = get_int(data, "expiration_height", what, 1)
        body["encrypted_preimage"] = _ciphertext(data.get("encrypted_preimage"), what)
    return TxOutput(kind, body)


def parse_transaction(raw: object, *, faucet: bool = False) -> Transaction:
    """Validate a transaction's shape; raises ``invalid_request`` with the offending path."""
    data = as_object(raw, "transaction")
    extra = set(data) - {"inputs", "outputs", "signatures"}
    if extra:
        raise bad(f"transaction has unknown fields {sorted(extra)}")
    inputs = tuple(parse_input(x, i) for i, x in enumerate(as_list(data.get("inputs"), "inputs")))
    outputs = tuple(parse_output(x, i) for i, x in enumerate(as_list(data.get("outputs"), "outputs")))
    sigs_raw = as_list(data.get("signatures", [None] * len(inputs)), "signatures")
    if len(sigs_raw) != len(inputs):
        raise bad("signatures must have one entry per input")
    sigs: list[str | None] = []
    for i, s in enumerate(sigs_raw):
        if s is not None and not isinstance(s, str):
            raise bad(f"signatures[{i}] must be a hex string or null")
        sigs.append(s)
    if not outputs and not inputs:
        raise bad("a transaction needs at least one input or output")
    if faucet and (inputs or any(o.kind is not OutputKind.NOTE for o in outputs)):
        raise bad("a faucet request takes note outputs only")
    return Transaction(inputs, outputs, tuple(sigs), faucet)


def v2_contract_context(contract: Mapping[str, object]) -> bytes:
    """The ElGamal context of a v2 incoming contract: hash of the body without the ciphertext."""
    return bytes.fromhex(object_id({k: v for k, v in contract.items() if k != "encrypted_preimage"}))


def offer_context(offer: Mapping[str, object]) -> bytes:
    """The ElGamal context of a v1 offer: hash of the offer without the ciphertext."""
    return bytes.fromhex(object_id({k: v for k, v in offer.items() if k != "encrypted_preimage"}))
