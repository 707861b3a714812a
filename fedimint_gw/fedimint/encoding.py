"""Fedimint's consensus encoding (`fedimint-core/src/encoding/mod.rs`, `fedimint-derive`).

Rules, as read in the upstream sources:
- u16/u32/u64 are Lightning BigSize varints (`< 0xfd` one byte; `fd`+u16, `fe`+u32, `ff`+u64,
  big-endian); non-minimal forms are refused, like LDK's `BigSize::read`. u8 and bool are one
  byte (bool only 0 or 1).
- `[u8; N]` is N raw bytes; `Vec<u8>` and `String` are varint length + bytes (UTF-8 for strings).
- `Vec<T>`, `BTreeMap<K, V>`, `BTreeSet<K>` are a varint count then the items; map and set keys
  must be strictly increasing on decode ("non-canonical" otherwise).
- `Option<T>` = `00` | `01` + value; `Result<T, E>` = `01` + Ok | `00` + Err;
  `Duration` = secs (u64) + nanos (u32).
- Derived enums: variant index (u64 varint) + the variant's fields encoded into a byte vector
  (varint length + bytes). A decoder must consume that body exactly. Enums with an
  `#[encodable_default]` variant keep unknown variants as `Default{variant, bytes}`
  (`UnknownVariant` here).
- Module dyn types (`DynInput`, `DynOutput`, ...): varint module instance id + varint length +
  the module's own encoding.

Decoding is bounded: no length or count may exceed the bytes left, and nesting is limited.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

from fedimint_gw.fedimint.errors import DecodeError
from fedimint_gw.fedimint.values import (
    DEFAULT_MAX_DEPTH,
    MAX_DECODE_SIZE,
    U16_MAX,
    U32_MAX,
    U64_MAX,
    Duration,
    E,
    Err,
    K,
    Ok,
    T,
    UnknownVariant,
)
from fedimint_gw.fedimint.writer import Writer, encode

V = TypeVar("V")

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "MAX_DECODE_SIZE",
    "U16_MAX",
    "U32_MAX",
    "U64_MAX",
    "Duration",
    "Err",
    "Ok",
    "Reader",
    "UnknownVariant",
    "Writer",
    "decode_hex",
    "decode_whole",
    "encode",
]


class Reader:
    """Reads consensus-encoded values from a byte string, refusing anything non-canonical."""

    def __init__(self, data: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH, _depth: int = 0) -> None:
        if len(data) > MAX_DECODE_SIZE:
            raise DecodeError(f"input of {len(data)} bytes exceeds the {MAX_DECODE_SIZE} byte limit")
        self._data = bytes(data)
        self._pos = 0
        self._max_depth = max_depth
        self._depth = _depth

    @property
    def remaining(self) -> int:
        """How many bytes are left to read."""
        return len(self._data) - self._pos

    def finish(self) -> None:
        """Refuse trailing bytes (upstream: "did not consume all bytes")."""
        if self.remaining:
            raise DecodeError(f"{self.remaining} trailing bytes after the value")

    @contextlib.contextmanager
    def _nested(self) -> Iterator[None]:
        self._depth += 1
        if self._depth > self._max_depth:
            raise DecodeError(f"nesting deeper than {self._max_depth} levels")
        try:
            yield
        finally:
            self._depth -= 1

    def sub(self, data: bytes) -> Reader:
        """A reader over `data` (an enum or module body) one nesting level deeper."""
        if self._depth + 1 > self._max_depth:
            raise DecodeError(f"nesting deeper than {self._max_depth} levels")
        return Reader(data, max_depth=self._max_depth, _depth=self._depth + 1)

    def read(self, n: int) -> bytes:
        """Exactly `n` raw bytes."""
        if n < 0 or n > self.remaining:
            raise DecodeError(f"truncated input: need {n} bytes, {self.remaining} left")
        out = self._data[self._pos : self._pos + n]
        self._pos += n
        return out

    def u8(self) -> int:
        return self.read(1)[0]

    def boolean(self) -> bool:
        flag = self.u8()
        if flag > 1:
            raise DecodeError(f"bool out of range: {flag} (expected 0 or 1)")
        return flag == 1

    def varint(self) -> int:
        """A BigSize u64 in its minimal form."""
        first = self.u8()
        if first < 0xFD:
            return first
        width, minimum = {0xFD: (2, 0xFD), 0xFE: (4, 0x1_0000), 0xFF: (8, 0x1_0000_0000)}[first]
        value = int.from_bytes(self.read(width), "big")
        if value < minimum:
            raise DecodeError(f"non-canonical varint: {value} in {width + 1} bytes")
        return value

    def u64(self) -> int:
        return self.varint()

    def u32(self) -> int:
        return self._bounded(U32_MAX, "u32")

    def u16(self) -> int:
        return self._bounded(U16_MAX, "u16")

    def _bounded(self, top: int, name: str) -> int:
        value = self.varint()
        if value > top:
            raise DecodeError(f"{name} out of range: {value}")
        return value

    def fixed(self, n: int) -> bytes:
        """A `[u8; n]` array."""
        return self.read(n)

    def length(self) -> int:
        """A length or count prefix; it can never exceed the bytes left."""
        n = self.varint()
        if n > self.remaining:
            raise DecodeError(f"length {n} exceeds the {self.remaining} bytes left")
        return n

    def byte_vec(self) -> bytes:
        """A `Vec<u8>`."""
        return self.read(self.length())

    def string(self) -> str:
        """A `String` (UTF-8)."""
        raw = self.byte_vec()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("string is not valid UTF-8") from None

    def vec(self, item: Callable[[Reader], T]) -> tuple[T, ...]:
        """A `Vec<T>`."""
        count = self.length()
        with self._nested():
            return tuple(item(self) for _ in range(count))

    def option(self, item: Callable[[Reader], T]) -> T | None:
        """An `Option<T>`."""
        flag = self.u8()
        if flag == 0:
            return None
        if flag != 1:
            raise DecodeError(f"invalid option flag {flag} (expected 0 or 1)")
        with self._nested():
            return item(self)

    def result(self, ok: Callable[[Reader], T], err: Callable[[Reader], E]) -> Ok[T] | Err[E]:
        """A `Result<T, E>`: flag 1 is Ok, flag 0 is Err."""
        flag = self.u8()
        if flag > 1:
            raise DecodeError(f"invalid result flag {flag} (expected 0 or 1)")
        with self._nested():
            return Ok(ok(self)) if flag == 1 else Err(err(self))

    def duration(self) -> Duration:
        secs = self.u64()
        nanos = self.u32()
        if nanos >= 1_000_000_000:
            raise DecodeError(f"duration nanoseconds out of range: {nanos}")
        return Duration(secs, nanos)

    def btree_map(self, key: Callable[[Reader], K], value: Callable[[Reader], V]) -> dict[K, V]:
        """A `BTreeMap<K, V>`: keys strictly increasing, else "non-canonical"."""
        count = self.length()
        out: dict[K, V] = {}
        previous: K | None = None
        with self._nested():
            for _ in range(count):
                k = key(self)
                if previous is not None and not previous < k:
                    raise DecodeError("non-canonical encoding: map keys are not strictly increasing")
                out[k] = value(self)
                previous = k
        return out

    def btree_set(self, key: Callable[[Reader], K]) -> tuple[K, ...]:
        """A `BTreeSet<K>`: items strictly increasing, else "non-canonical"."""
        return tuple(self.btree_map(key, lambda _r: None))

    def enum(self, variants: Mapping[int, Callable[[Reader], T]]) -> T | UnknownVariant:
        """A derived enum with a default variant: unknown variants come back as UnknownVariant."""
        index = self.u64()
        body = self.byte_vec()
        handler = variants.get(index)
        if handler is None:
            return UnknownVariant(index, body)
        inner = self.sub(body)
        decoded = handler(inner)
        inner.finish()
        return decoded

    def strict_enum(self, variants: Mapping[int, Callable[[Reader], T]], name: str) -> T:
        """A derived enum without a default variant: unknown variants are refused."""
        decoded = self.enum(variants)
        if isinstance(decoded, UnknownVariant):
            raise DecodeError(f"invalid enum variant {decoded.variant} while decoding {name}")
        return decoded

    def dyn(self) -> tuple[int, Reader]:
        """A module dyn value: its module instance id and a reader over its body."""
        instance = self.u16()
        body = self.byte_vec()
        return instance, self.sub(body)


def decode_whole(data: bytes, parse: Callable[[Reader], T], *, max_depth: int = DEFAULT_MAX_DEPTH) -> T:
    """Decode one value that must use all of `data`."""
    reader = Reader(data, max_depth=max_depth)
    value = parse(reader)
    reader.finish()
    return value


def decode_hex(text: str, parse: Callable[[Reader], T]) -> T:
    """Decode one value from hex (how `SerdeModuleEncoding` values travel in JSON)."""
    try:
        data = bytes.fromhex(text)
    except (ValueError, TypeError):
        raise DecodeError("not a hex string") from None
    return decode_whole(data, parse)
