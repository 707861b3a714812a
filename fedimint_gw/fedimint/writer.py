"""The consensus encoder: the mirror of `encoding.Reader` (rules in `encoding.py`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TypeVar

from fedimint_gw.fedimint.errors import EncodeError
from fedimint_gw.fedimint.values import U16_MAX, U32_MAX, U64_MAX, Duration, E, Err, K, Ok, T, UnknownVariant

V = TypeVar("V")


class Writer:
    """Builds a consensus encoding; the mirror of `Reader`."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def getvalue(self) -> bytes:
        return bytes(self._buf)

    def raw(self, data: bytes) -> Writer:
        self._buf += data
        return self

    def u8(self, value: int) -> Writer:
        if not 0 <= value <= 0xFF:
            raise EncodeError(f"u8 out of range: {value}")
        self._buf.append(value)
        return self

    def boolean(self, value: bool) -> Writer:
        return self.u8(1 if value else 0)

    def varint(self, value: int, top: int = U64_MAX) -> Writer:
        """A BigSize varint in its minimal form."""
        if isinstance(value, bool) or not 0 <= value <= top:
            raise EncodeError(f"integer out of range: {value!r}")
        if value < 0xFD:
            self._buf.append(value)
        elif value <= U16_MAX:
            self._buf += b"\xfd" + value.to_bytes(2, "big")
        elif value <= U32_MAX:
            self._buf += b"\xfe" + value.to_bytes(4, "big")
        else:
            self._buf += b"\xff" + value.to_bytes(8, "big")
        return self

    def u64(self, value: int) -> Writer:
        return self.varint(value)

    def u32(self, value: int) -> Writer:
        return self.varint(value, U32_MAX)

    def u16(self, value: int) -> Writer:
        return self.varint(value, U16_MAX)

    def fixed(self, data: bytes, n: int) -> Writer:
        """A `[u8; n]` array; refuses any other size."""
        if len(data) != n:
            raise EncodeError(f"expected {n} bytes, got {len(data)}")
        return self.raw(data)

    def byte_vec(self, data: bytes) -> Writer:
        return self.varint(len(data)).raw(data)

    def string(self, text: str) -> Writer:
        return self.byte_vec(text.encode("utf-8"))

    def vec(self, items: Iterable[T], item: Callable[[Writer, T], object]) -> Writer:
        values = list(items)
        self.varint(len(values))
        for value in values:
            item(self, value)
        return self

    def option(self, value: T | None, item: Callable[[Writer, T], object]) -> Writer:
        if value is None:
            return self.u8(0)
        self.u8(1)
        item(self, value)
        return self

    def result(
        self, value: Ok[T] | Err[E], ok: Callable[[Writer, T], object], err: Callable[[Writer, E], object]
    ) -> Writer:
        if isinstance(value, Ok):
            self.u8(1)
            ok(self, value.value)
        else:
            self.u8(0)
            err(self, value.error)
        return self

    def duration(self, value: Duration) -> Writer:
        if not 0 <= value.nanos < 1_000_000_000:
            raise EncodeError(f"duration nanoseconds out of range: {value.nanos}")
        return self.u64(value.secs).u32(value.nanos)

    def btree_map(
        self,
        mapping: Mapping[K, V],
        key: Callable[[Writer, K], object],
        value: Callable[[Writer, V], object],
    ) -> Writer:
        """Keys in increasing order, as a BTreeMap iterates them."""
        ordered = sorted(mapping.items(), key=lambda kv: kv[0])
        self.varint(len(ordered))
        for k, v in ordered:
            key(self, k)
            value(self, v)
        return self

    def btree_set(self, items: Iterable[K], key: Callable[[Writer, K], object]) -> Writer:
        unique = sorted(set(items))
        return self.vec(unique, key)

    def variant(self, index: int, body: bytes) -> Writer:
        """An enum variant: index, then its fields as a length-prefixed byte vector."""
        return self.u64(index).byte_vec(body)

    def unknown(self, value: UnknownVariant) -> Writer:
        """Re-encode a variant kept as UnknownVariant, byte for byte."""
        return self.variant(value.variant, value.data)

    def dyn(self, module_instance_id: int, body: bytes) -> Writer:
        """A module dyn value: instance id, then the module's encoding, length-prefixed."""
        return self.u16(module_instance_id).byte_vec(body)


def encode(build: Callable[[Writer], object]) -> bytes:
    """Run `build` on a fresh Writer and return the bytes."""
    writer = Writer()
    build(writer)
    return writer.getvalue()
