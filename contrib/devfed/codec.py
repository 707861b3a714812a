"""Canonical JSON, hashing, signatures, and typed field readers shared by server and wallet.

Canonical JSON = ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)``
encoded as UTF-8. Every id in devfed is sha256 of a canonical JSON document.
Signatures are ECDSA over secp256k1 (coincurve), DER-encoded, hex, over the 32-byte digest
``sha256("devfed/" + purpose + "\\x00" + canonical_json(message))``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import cast

from coincurve import PrivateKey, PublicKey

from contrib.devfed.errors import DevfedError, ErrorCode

JsonObject = dict[str, object]


def canonical_json(value: object) -> bytes:
    """Serialise ``value`` canonically (sorted keys, no spaces, ASCII)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def object_id(value: object) -> str:
    """sha256 of the canonical JSON of ``value`` (transaction ids, contract ids, federation id)."""
    return sha256_hex(canonical_json(value))


def signing_digest(purpose: str, message: object) -> bytes:
    """The 32-byte digest a devfed signature covers."""
    return hashlib.sha256(b"devfed/" + purpose.encode() + b"\x00" + canonical_json(message)).digest()


def sign(key: PrivateKey, purpose: str, message: object) -> str:
    """Sign ``message`` for ``purpose``; returns DER hex."""
    signature: bytes = key.sign(signing_digest(purpose, message), hasher=None)
    return signature.hex()


def verify(pubkey_hex: str, purpose: str, message: object, signature_hex: object) -> bool:
    """Check a signature made by :func:`sign`; malformed keys or signatures are just invalid."""
    if not isinstance(signature_hex, str):
        return False
    try:
        key = PublicKey(bytes.fromhex(pubkey_hex))
        return bool(key.verify(bytes.fromhex(signature_hex), signing_digest(purpose, message), hasher=None))
    except (ValueError, TypeError):
        return False


def parse_json(raw: bytes | str) -> object:
    """Decode JSON or raise ``malformed_json``."""
    try:
        return cast(object, json.loads(raw))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DevfedError(ErrorCode.MALFORMED_JSON, f"body is not valid JSON: {exc}") from None


def bad(message: str) -> DevfedError:
    """An ``invalid_request`` error."""
    return DevfedError(ErrorCode.INVALID_REQUEST, message)


def as_object(value: object, what: str) -> Mapping[str, object]:
    """``value`` as a JSON object, else ``invalid_request``."""
    if not isinstance(value, dict):
        raise bad(f"{what} must be a JSON object")
    return cast(Mapping[str, object], value)


def as_list(value: object, what: str) -> list[object]:
    """``value`` as a JSON array, else ``invalid_request``."""
    if not isinstance(value, list):
        raise bad(f"{what} must be a JSON array")
    return cast(list[object], value)


def get_int(data: Mapping[str, object], key: str, what: str, minimum: int = 0) -> int:
    """An integer field ``>= minimum`` (booleans refused)."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"{what}.{key} must be an integer")
    if value < minimum:
        raise bad(f"{what}.{key} must be >= {minimum}")
    return value


def get_str(data: Mapping[str, object], key: str, what: str) -> str:
    """A string field."""
    value = data.get(key)
    if not isinstance(value, str):
        raise bad(f"{what}.{key} must be a string")
    return value


def get_hex(data: Mapping[str, object], key: str, what: str, size: int) -> str:
    """A lowercase hex field of exactly ``size`` bytes."""
    value = get_str(data, key, what).lower()
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise bad(f"{what}.{key} must be hex") from None
    if len(raw) != size:
        raise bad(f"{what}.{key} must be {size} bytes of hex")
    return value


def get_pubkey(data: Mapping[str, object], key: str, what: str) -> str:
    """A 33-byte compressed secp256k1 public key in hex."""
    value = get_hex(data, key, what, 33)
    try:
        PublicKey(bytes.fromhex(value))
    except ValueError:
        raise bad(f"{what}.{key} is not a valid public key") from None
    return value
