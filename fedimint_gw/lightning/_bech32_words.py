"""Bech32 framing without BIP-173's 90-character limit, and 5-bit word packing, for BOLT #11.

The `bech32` package's `bech32_decode` gives no reason for a failure and `convertbits` rejects the
non-zero leftover bits BOLT #11 readers should drop, so framing and packing live here; the checksum
itself is the package's.
"""

from __future__ import annotations

from collections.abc import Sequence

from bech32 import CHARSET, bech32_create_checksum, bech32_verify_checksum


class Bech32FormatError(ValueError):
    """The string is not valid bech32 (the message says why)."""


def int_to_words(value: int, length: int = 0) -> list[int]:
    """Big-endian 5-bit words of the non-negative `value`: `length` words, or the fewest if 0."""
    length = length or -(-value.bit_length() // 5)
    if value >> (5 * length):
        raise ValueError(f"{value} does not fit in {length} 5-bit words")
    return [(value >> (5 * i)) & 31 for i in reversed(range(length))]


def words_to_int(words: Sequence[int]) -> int:
    """The big-endian integer that `words` spell."""
    value = 0
    for word in words:
        value = value << 5 | word
    return value


def bytes_to_words(raw: bytes) -> list[int]:
    """`raw` as 5-bit words, the last one zero-padded."""
    length = -(-len(raw) * 8 // 5)
    return int_to_words(int.from_bytes(raw, "big") << (5 * length - 8 * len(raw)), length)


def words_to_bytes(words: Sequence[int], *, pad: bool) -> bytes:
    """`words` as bytes: zero-padded to a whole byte if `pad`, else with leftover bits dropped."""
    bits = 5 * len(words)
    length = -(-bits // 8) if pad else bits // 8
    value = words_to_int(words)
    value = value << (8 * length - bits) if pad else value >> (bits - 8 * length)
    return value.to_bytes(length, "big")


def bech32_join(hrp: str, words: Sequence[int]) -> str:
    """The lower-case bech32 string for `hrp` and data `words`, checksum appended."""
    checksum: list[int] = bech32_create_checksum(hrp, list(words))
    return hrp + "1" + "".join(CHARSET[w] for w in [*words, *checksum])


def bech32_split(text: str) -> tuple[str, list[int]]:
    """The lower-case hrp and the data words (checksum verified and removed) of `text`."""
    if not isinstance(text, str) or not all(33 <= ord(ch) <= 126 for ch in text):
        raise Bech32FormatError("not a string of printable ASCII characters")
    if text not in (text.lower(), text.upper()):
        raise Bech32FormatError("mixes upper and lower case")
    text = text.lower()
    pos = text.rfind("1")
    if pos < 1:
        raise Bech32FormatError("no separator '1' after a human-readable part")
    hrp, rest = text[:pos], text[pos + 1 :]
    bad = sorted(set(rest) - set(CHARSET))
    if bad:
        raise Bech32FormatError(f"invalid characters in data part: {''.join(bad)!r}")
    if len(rest) < 6:
        raise Bech32FormatError("data part too short for a checksum")
    words = [CHARSET.index(ch) for ch in rest]
    if not bech32_verify_checksum(hrp, words):
        raise Bech32FormatError("checksum is invalid")
    return hrp, words[:-6]
