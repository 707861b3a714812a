"""Helpers that read typed fields out of JSON-decoded dictionaries.

Every failure is a :class:`CryptoError`, so ``from_dict`` constructors never leak
``KeyError``/``TypeError``/``ValueError`` to callers.
"""

from __future__ import annotations

from collections.abc import Mapping

from fedimint_gw.crypto.errors import CryptoError
from fedimint_gw.crypto.point import Point
from fedimint_gw.crypto.scalar import bytes_from_hex, scalar_from_hex


def require_mapping(data: object, what: str) -> Mapping[str, object]:
    """Return ``data`` as a mapping or raise :class:`CryptoError`."""
    if not isinstance(data, Mapping):
        raise CryptoError(f"{what} must be a JSON object, got {type(data).__name__}")
    return data


def get_field(data: Mapping[str, object], key: str, what: str) -> object:
    """Return ``data[key]`` or raise :class:`CryptoError` naming the missing field."""
    if key not in data:
        raise CryptoError(f"{what} is missing field {key!r}")
    return data[key]


def get_str(data: Mapping[str, object], key: str, what: str) -> str:
    """Return the string field ``key``."""
    value = get_field(data, key, what)
    if not isinstance(value, str):
        raise CryptoError(f"{what}.{key} must be a string")
    return value


def get_index(data: Mapping[str, object], key: str, what: str) -> int:
    """Return the positive integer field ``key`` (a Shamir index)."""
    value = get_field(data, key, what)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CryptoError(f"{what}.{key} must be a positive integer")
    return value


def get_scalar(data: Mapping[str, object], key: str, what: str) -> int:
    """Return the hex-encoded scalar field ``key``."""
    return scalar_from_hex(get_str(data, key, what))


def get_point(data: Mapping[str, object], key: str, what: str) -> Point:
    """Return the hex-encoded compressed point field ``key``."""
    return Point.from_hex(get_str(data, key, what))


def get_bytes(data: Mapping[str, object], key: str, size: int, what: str) -> bytes:
    """Return the hex-encoded field ``key`` of exactly ``size`` bytes."""
    return bytes_from_hex(get_str(data, key, what), size, f"{what}.{key}")
