"""Reading the `ln` module's JSON answers (serde forms) strictly; DecodeError on anything else.

Byte arrays (`PreimageKey`, `Preimage`, the ciphertext's points and V) are JSON arrays of
numbers; hashes and public keys hex strings (as the official client accepted them).
"""

from __future__ import annotations

from fedimint_gw.fedimint import json_fields as jf
from fedimint_gw.fedimint.encoding import U32_MAX, U64_MAX
from fedimint_gw.fedimint.errors import DecodeError
from fedimint_gw.fedimint.ln.contracts import (
    G1_LEN,
    G2_LEN,
    HASH_LEN,
    PREIMAGE_KEY_LEN,
    PUBKEY_LEN,
    ContractAccount,
    DecryptedPreimage,
    FundedIncoming,
    IncomingContract,
    IncomingContractOffer,
    OutgoingContract,
    PreimageState,
)
from fedimint_gw.fedimint.transaction import TXID_LEN, OutPoint

MAX_PREIMAGE_CIPHERTEXT = 256


def byte_array(value: object, what: str, size: int | None = None, limit: int = 4096) -> bytes:
    """A JSON array of numbers 0..255 (serde's form of a byte array)."""
    if not isinstance(value, list) or len(value) > limit or (size is not None and len(value) != size):
        raise DecodeError(f"{what} must be an array of {size if size is not None else 'some'} bytes")
    if any(isinstance(b, bool) or not isinstance(b, int) or not 0 <= b <= 255 for b in value):
        raise DecodeError(f"{what} holds something other than bytes")
    return bytes(value)


def ciphertext_from_json(value: object) -> bytes:
    """threshold_crypto's (U, V, W) serde tuple -> the bytes U || W || V."""
    if not isinstance(value, list) or len(value) != 3:
        raise DecodeError("an encrypted preimage is a 3-tuple")
    u = byte_array(value[0], "ciphertext U", G1_LEN)
    v = byte_array(value[1], "ciphertext V", None, MAX_PREIMAGE_CIPHERTEXT)
    w = byte_array(value[2], "ciphertext W", G2_LEN)
    return u + w + v


def decrypted_from_json(value: object) -> DecryptedPreimage:
    if value == "Pending":
        return DecryptedPreimage(PreimageState.PENDING)
    if value == "Invalid":
        return DecryptedPreimage(PreimageState.INVALID)
    data = jf.obj(value, "decrypted preimage")
    if set(data) != {"Some"}:
        raise DecodeError("a decrypted preimage is Pending, Invalid or {Some: key}")
    return DecryptedPreimage(PreimageState.SOME, byte_array(data["Some"], "preimage key", PREIMAGE_KEY_LEN))


def _outgoing(value: object) -> OutgoingContract:
    data = jf.obj(value, "outgoing contract")
    cancelled = jf.field(data, "cancelled", "outgoing contract")
    if not isinstance(cancelled, bool):
        raise DecodeError("cancelled must be a boolean")
    return OutgoingContract(
        jf.hex_bytes(jf.field(data, "hash", "outgoing contract"), "hash", HASH_LEN),
        jf.hex_bytes(jf.field(data, "gateway_key", "outgoing contract"), "gateway_key", PUBKEY_LEN),
        jf.integer(jf.field(data, "timelock", "outgoing contract"), "timelock", U32_MAX),
        jf.hex_bytes(jf.field(data, "user_key", "outgoing contract"), "user_key", PUBKEY_LEN),
        cancelled,
    )


def _incoming(value: object) -> FundedIncoming:
    data = jf.obj(value, "incoming contract account")
    inner = jf.obj(jf.field(data, "contract", "incoming"), "incoming contract")
    point = jf.obj(jf.field(data, "out_point", "incoming"), "out point")
    contract = IncomingContract(
        jf.hex_bytes(jf.field(inner, "hash", "incoming contract"), "hash", HASH_LEN),
        ciphertext_from_json(jf.field(inner, "encrypted_preimage", "incoming contract")),
        decrypted_from_json(jf.field(inner, "decrypted_preimage", "incoming contract")),
        jf.hex_bytes(jf.field(inner, "gateway_key", "incoming contract"), "gateway_key", PUBKEY_LEN),
    )
    out_point = OutPoint(
        jf.hex_bytes(jf.field(point, "txid", "out point"), "txid", TXID_LEN),
        jf.integer(jf.field(point, "out_idx", "out point"), "out_idx", U64_MAX),
    )
    return FundedIncoming(contract, out_point)


def account_from_json(value: object) -> ContractAccount:
    """`ContractAccount` JSON: {"amount", "contract": {"Incoming": {...}} | {"Outgoing": {...}}}."""
    data = jf.obj(value, "contract account")
    amount = jf.integer(jf.field(data, "amount", "contract account"), "amount", U64_MAX)
    contract = jf.obj(jf.field(data, "contract", "contract account"), "contract")
    if set(contract) == {"Outgoing"}:
        return ContractAccount(amount, _outgoing(contract["Outgoing"]))
    if set(contract) == {"Incoming"}:
        return ContractAccount(amount, _incoming(contract["Incoming"]))
    raise DecodeError("a contract is Incoming or Outgoing")


def offer_from_json(value: object) -> IncomingContractOffer:
    data = jf.obj(value, "offer")
    expiry = data.get("expiry_time")
    return IncomingContractOffer(
        jf.integer(jf.field(data, "amount", "offer"), "amount", U64_MAX),
        jf.hex_bytes(jf.field(data, "hash", "offer"), "hash", HASH_LEN),
        ciphertext_from_json(jf.field(data, "encrypted_preimage", "offer")),
        None if expiry is None else jf.integer(expiry, "expiry_time", U64_MAX),
    )
