"""Fedimint consensus encoding: upstream vectors, round trips and refusals."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedimint_gw.fedimint.encoding import (
    U64_MAX,
    Duration,
    Err,
    Ok,
    Reader,
    UnknownVariant,
    Writer,
    decode_hex,
    decode_whole,
    encode,
)
from fedimint_gw.fedimint.errors import DecodeError, EncodeError

# --- upstream vectors: fedimint-core/src/encoding/tests.rs -------------------------------------


def _test_enum(r: Reader) -> tuple[str, object]:
    """enum TestEnum { Foo(Option<u64>), Bar { bazz: Vec<u8> } } (no default variant)."""
    return r.strict_enum(
        {0: lambda b: ("Foo", b.option(Reader.u64)), 1: lambda b: ("Bar", b.byte_vec())}, "TestEnum"
    )


@pytest.mark.parametrize(
    "value,expected",
    [
        (("Foo", 42), bytes([0, 2, 1, 42])),
        (("Foo", None), bytes([0, 1, 0])),
        (("Bar", b"\x01\x02\x03"), bytes([1, 4, 3, 1, 2, 3])),
    ],
)
def test_upstream_derive_enum(value: tuple[str, object], expected: bytes) -> None:
    name, field = value
    if name == "Foo":
        body = encode(lambda w: w.option(field if isinstance(field, int) else None, Writer.u64))
        got = encode(lambda w: w.variant(0, body))
    else:
        assert isinstance(field, bytes)
        got = encode(lambda w: w.variant(1, encode(lambda b: b.byte_vec(field))))
    assert got == expected
    assert decode_whole(expected, _test_enum) == value


def test_upstream_derive_struct() -> None:
    """struct TestStruct { vec: Vec<u8>, num: u32 } {vec: [1,2,3], num: 42} = 03 01 02 03 2a."""
    expected = bytes([3, 1, 2, 3, 42])
    assert encode(lambda w: w.byte_vec(b"\x01\x02\x03").u32(42)) == expected
    assert decode_whole(expected, lambda r: (r.byte_vec(), r.u32())) == (b"\x01\x02\x03", 42)


def test_upstream_default_enum_keeps_unknown_variant() -> None:
    """NoDefaultEnum::Baz{baz: 123} read as DefaultEnum = Default{variant: 2, bytes: [123]}."""
    data = encode(lambda w: w.variant(2, bytes([123])))
    value = decode_whole(data, lambda r: r.enum({0: lambda b: "Foo", 1: lambda b: (b.u32(), b.string())}))
    assert value == UnknownVariant(2, bytes([123]))
    assert encode(lambda w: w.unknown(UnknownVariant(2, bytes([123])))) == data


def test_upstream_no_default_enum_refuses_unknown_variant() -> None:
    data = encode(lambda w: w.variant(42, bytes([0, 1, 2, 3])))
    with pytest.raises(DecodeError, match="invalid enum variant 42"):
        decode_whole(data, lambda r: r.strict_enum({0: lambda b: "Foo"}, "NoDefaultEnum"))


def test_upstream_duration_and_option_time() -> None:
    """Legacy SystemTime vectors: 42s 100ns = [42, 100]; Some(..) = [1, 42, 100]."""
    assert encode(lambda w: w.duration(Duration(42, 100))) == bytes([42, 100])
    assert decode_whole(bytes([1, 42, 100]), lambda r: r.option(Reader.duration)) == Duration(42, 100)
    with pytest.raises(DecodeError, match="option flag"):
        decode_whole(bytes([2]), lambda r: r.option(Reader.duration))


def test_upstream_duration_refuses_a_billion_nanos() -> None:
    bad = encode(lambda w: w.u64(U64_MAX).u32(1_000_000_000))
    with pytest.raises(DecodeError):
        decode_whole(bad, Reader.duration)
    ok = encode(lambda w: w.u64(U64_MAX).u32(999_999_999))
    assert decode_whole(ok, Reader.duration) == Duration(U64_MAX, 999_999_999)


def test_upstream_whole_decode_refuses_trailing_bytes() -> None:
    with pytest.raises(DecodeError, match="trailing"):
        decode_whole(bytes([1, 2]), Reader.u8)
    with pytest.raises(DecodeError, match="truncated"):
        decode_whole(b"", Reader.u8)


def test_upstream_vec_with_huge_length_is_refused() -> None:
    """vec_decode_sanity: ff ff.. as a length must be an error, not an allocation."""
    buf = bytes([0xFF] * 8 + [0] * 14)
    with pytest.raises(DecodeError):
        decode_whole(buf, Reader.byte_vec)
    with pytest.raises(DecodeError):
        decode_whole(buf, lambda r: r.vec(Reader.u16))


# --- BigSize ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value,hexed",
    [
        (0, "00"),
        (0xFC, "fc"),
        (0xFD, "fd00fd"),
        (0xFFFF, "fdffff"),
        (0x10000, "fe00010000"),
        (0xFFFFFFFF, "feffffffff"),
        (0x100000000, "ff0000000100000000"),
        (U64_MAX, "ffffffffffffffffff"),
    ],
)
def test_bigsize_vectors(value: int, hexed: str) -> None:
    """The BOLT 1 BigSize test vectors."""
    assert encode(lambda w: w.u64(value)).hex() == hexed
    assert decode_hex(hexed, Reader.u64) == value


@pytest.mark.parametrize("hexed", ["fd00fc", "fe0000ffff", "ff00000000ffffffff", "fd0001"])
def test_bigsize_refuses_non_minimal(hexed: str) -> None:
    with pytest.raises(DecodeError, match="non-canonical"):
        decode_hex(hexed, Reader.u64)


@pytest.mark.parametrize("hexed", ["fd00", "fe0001", "ff00000001"])
def test_bigsize_refuses_truncated(hexed: str) -> None:
    with pytest.raises(DecodeError, match="truncated"):
        decode_hex(hexed, Reader.u64)


def test_narrow_ints_refuse_out_of_range() -> None:
    with pytest.raises(DecodeError, match="u16"):
        decode_hex("fe00010000", Reader.u16)
    with pytest.raises(DecodeError, match="u32"):
        decode_hex("ff0000000100000000", Reader.u32)
    with pytest.raises(EncodeError):
        encode(lambda w: w.u16(0x10000))
    with pytest.raises(EncodeError):
        encode(lambda w: w.u64(-1))
    with pytest.raises(EncodeError):
        encode(lambda w: w.u64(U64_MAX + 1))


@given(st.integers(min_value=0, max_value=U64_MAX))
def test_varint_round_trip(value: int) -> None:
    assert decode_whole(encode(lambda w: w.u64(value)), Reader.u64) == value


@given(st.lists(st.integers(min_value=0, max_value=U64_MAX), min_size=2, max_size=2))
def test_varint_encoding_preserves_order(pair: list[int]) -> None:
    """Upstream relies on this for Amount keys (test_lexicographical_sorting)."""
    a, b = pair
    ea, eb = encode(lambda w: w.u64(a)), encode(lambda w: w.u64(b))
    assert (a < b) == (ea < eb)


# --- other types --------------------------------------------------------------------------------


def test_bool_refuses_two() -> None:
    assert decode_hex("01", Reader.boolean) is True
    with pytest.raises(DecodeError, match="bool"):
        decode_hex("02", Reader.boolean)


def test_result_flags() -> None:
    ok = encode(lambda w: w.result(Ok(7), Writer.u64, Writer.string))
    err = encode(lambda w: w.result(Err("no"), Writer.u64, Writer.string))
    assert ok == bytes([1, 7]) and err == bytes([0, 2]) + b"no"
    assert decode_whole(ok, lambda r: r.result(Reader.u64, Reader.string)) == Ok(7)
    assert decode_whole(err, lambda r: r.result(Reader.u64, Reader.string)) == Err("no")


def test_string_must_be_utf8() -> None:
    with pytest.raises(DecodeError, match="UTF-8"):
        decode_hex("01ff", Reader.string)


def test_fixed_array_size_is_checked() -> None:
    with pytest.raises(EncodeError):
        encode(lambda w: w.fixed(b"\x00" * 31, 32))
    with pytest.raises(DecodeError, match="truncated"):
        decode_whole(b"\x00" * 31, lambda r: r.fixed(32))


def test_btreemap_sorted_on_encode_and_canonical_on_decode() -> None:
    data = encode(lambda w: w.btree_map({3: "c", 1: "a"}, Writer.u64, Writer.string))
    assert data.hex() == "02" + "01" + "0161" + "03" + "0163"
    assert decode_whole(data, lambda r: r.btree_map(Reader.u64, Reader.string)) == {1: "a", 3: "c"}
    swapped = bytes.fromhex("02" + "03" + "0163" + "01" + "0161")
    with pytest.raises(DecodeError, match="non-canonical"):
        decode_whole(swapped, lambda r: r.btree_map(Reader.u64, Reader.string))
    duplicate = bytes.fromhex("02" + "01" + "0161" + "01" + "0161")
    with pytest.raises(DecodeError, match="non-canonical"):
        decode_whole(duplicate, lambda r: r.btree_map(Reader.u64, Reader.string))


def test_btreemap_string_keys_use_rust_ordering_not_byte_ordering() -> None:
    """Rust orders String keys by content ("aa" < "b"), whatever their encodings compare as."""
    data = encode(lambda w: w.btree_map({"b": 1, "aa": 2}, Writer.string, Writer.u64))
    assert decode_whole(data, lambda r: r.btree_map(Reader.string, Reader.u64)) == {"aa": 2, "b": 1}
    assert data.startswith(bytes([2, 2]) + b"aa")


def test_btreeset() -> None:
    data = encode(lambda w: w.btree_set([5, 1, 5], Writer.u16))
    assert data == bytes([2, 1, 5])
    assert decode_whole(data, lambda r: r.btree_set(Reader.u16)) == (1, 5)
    with pytest.raises(DecodeError, match="non-canonical"):
        decode_whole(bytes([2, 5, 1]), lambda r: r.btree_set(Reader.u16))


def test_enum_body_must_be_consumed_exactly() -> None:
    data = encode(lambda w: w.variant(0, bytes([1, 2])))
    with pytest.raises(DecodeError, match="trailing"):
        decode_whole(data, lambda r: r.enum({0: Reader.u8}))
    short = encode(lambda w: w.variant(0, b""))
    with pytest.raises(DecodeError, match="truncated"):
        decode_whole(short, lambda r: r.enum({0: Reader.u8}))


def test_dyn_value() -> None:
    data = encode(lambda w: w.dyn(3, b"\xaa\xbb"))
    assert data == bytes([3, 2, 0xAA, 0xBB])

    def parse(r: Reader) -> tuple[int, bytes]:
        instance, body = r.dyn()
        return instance, body.read(body.remaining)

    assert decode_whole(data, parse) == (3, b"\xaa\xbb")
    with pytest.raises(DecodeError, match="exceeds"):
        decode_whole(bytes([3, 5, 0xAA]), parse)


def test_nesting_depth_is_limited() -> None:
    depth = 100
    data = b""
    for _ in range(depth):
        data = encode(lambda w, inner=data: w.variant(0, inner))

    def nested(r: Reader) -> object:
        return r.enum({0: lambda b: nested(b) if b.remaining else "leaf"})

    with pytest.raises(DecodeError, match="nesting"):
        decode_whole(data, nested)
    assert decode_whole(data, nested, max_depth=200) is not None


def test_counts_cannot_exceed_input() -> None:
    with pytest.raises(DecodeError, match="exceeds"):
        decode_hex("05" + "01", lambda r: r.vec(Reader.u8))


def test_hex_input_must_be_hex() -> None:
    with pytest.raises(DecodeError, match="hex"):
        decode_hex("zz", Reader.u8)


@given(
    st.dictionaries(st.integers(0, U64_MAX), st.binary(max_size=40), max_size=8),
    st.lists(st.text(max_size=20), max_size=5),
    st.one_of(st.none(), st.integers(0, 0xFFFF)),
)
def test_composite_round_trip(mapping: dict[int, bytes], texts: list[str], opt: int | None) -> None:
    def build(w: Writer) -> None:
        w.btree_map(mapping, Writer.u64, Writer.byte_vec)
        w.vec(texts, Writer.string)
        w.option(opt, Writer.u16)

    def parse(r: Reader) -> tuple[object, ...]:
        return (r.btree_map(Reader.u64, Reader.byte_vec), list(r.vec(Reader.string)), r.option(Reader.u16))

    assert decode_whole(encode(build), parse) == (mapping, texts, opt)


@given(st.binary(max_size=64))
def test_random_bytes_never_crash_the_decoder(data: bytes) -> None:
    def parse(r: Reader) -> object:
        return (r.vec(lambda x: x.enum({0: Reader.string, 1: Reader.duration})), r.option(Reader.u32))

    with contextlib.suppress(DecodeError):
        decode_whole(data, parse)
