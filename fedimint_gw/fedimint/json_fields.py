"""Strict readers for JSON values received from guardians (every failure is a DecodeError)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from fedimint_gw.fedimint.errors import DecodeError

T = TypeVar("T")


def obj(value: object, what: str) -> Mapping[str, object]:
    """A JSON object."""
    if not isinstance(value, Mapping):
        raise DecodeError(f"{what} must be a JSON object")
    return value


def field(data: Mapping[str, object], key: str, what: str) -> object:
    if key not in data:
        raise DecodeError(f"{what} is missing {key!r}")
    return data[key]


def integer(value: object, what: str, top: int) -> int:
    """A JSON integer in 0..=top (booleans are not integers)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
        raise DecodeError(f"{what} must be an integer in 0..{top}")
    return value


def text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise DecodeError(f"{what} must be a string")
    return value


def hex_bytes(value: object, what: str, size: int | None = None) -> bytes:
    """Lower- or upper-case hex; `size` bytes when given."""
    raw = text(value, what)
    try:
        data = bytes.fromhex(raw)
    except ValueError:
        raise DecodeError(f"{what} is not hex") from None
    if len(raw) != 2 * len(data) or (size is not None and len(data) != size):
        raise DecodeError(f"{what} must be {size} bytes of hex" if size else f"{what} is not hex")
    return data


def int_key(key: str, what: str, top: int) -> int:
    """A JSON object key holding an integer: ASCII digits only, in 0..=top."""
    if not key or not key.isascii() or not key.isdigit() or len(key) > 20:
        raise DecodeError(f"{what} key {key!r} is not a number")
    value = int(key)
    if value > top:
        raise DecodeError(f"{what} key {key} is out of range")
    return value


def int_keyed(value: object, what: str, top: int, item: Callable[[object, str], T]) -> dict[int, T]:
    """A JSON object with integer keys ("0", "1", ...), values parsed by `item`."""
    out: dict[int, T] = {}
    for key, raw in obj(value, what).items():
        number = int_key(key, what, top)
        if number in out:
            raise DecodeError(f"{what} has key {number} twice")
        out[number] = item(raw, f"{what}[{number}]")
    return dict(sorted(out.items()))
