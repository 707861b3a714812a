"""`SerdeModuleEncoding<T>` as it travels in JSON: how guardians and the client pass consensus values.

Observed with the official client (v0.7-era WASM build) calling `submit_transaction`: the value is a
one-element JSON array holding the hex of the consensus encoding of a `Vec<u8>`, that is a BigSize
length followed by the value's own encoding: `["<hex(len || encode(T))>"]` (upstream's tuple struct
`SerdeModuleEncoding(Vec<u8>, PhantomData<T>)`, hex via `as_hex`, which consensus-encodes the bytes).
`fedimint_gw/fedimint/endpoints.py` sends a bare hex string instead; devfed refuses that form.
"""

from __future__ import annotations

from fedimint_gw.fedimint.encoding import Reader, decode_hex, encode
from fedimint_gw.fedimint.errors import DecodeError


def to_serde(data: bytes) -> list[str]:
    """The JSON form of a consensus-encoded value."""
    return [encode(lambda w: w.byte_vec(data)).hex()]


def from_serde(value: object, what: str = "value") -> bytes:
    """The consensus encoding inside a `SerdeModuleEncoding` JSON value; DecodeError otherwise."""
    if not isinstance(value, list) or len(value) != 1 or not isinstance(value[0], str):
        raise DecodeError(f"{what} must be a one-element array holding hex (SerdeModuleEncoding)")
    return decode_hex(value[0], Reader.byte_vec)
