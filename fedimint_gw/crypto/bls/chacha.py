"""The ``rand_chacha`` 0.3 ``ChaChaRng`` (ChaCha20) and ``ff``'s ``Scalar::random`` on top of it.

Fedimint derives "random" group elements and scalars from a seed by keying this generator with
32 bytes. The stream is ChaCha20 (RFC 7539 block function with 20 rounds) with the 32-byte seed as
key, a 64-bit block counter in words 12-13 starting at 0, and stream id 0 in words 14-15. Its
output is consumed as little-endian 32-bit words: ``next_u32`` takes one word and ``fill_bytes``
takes whole words, dropping the unused bytes of a last partial word (``rand_core`` 0.6
``BlockRng::fill_bytes``).
"""

from __future__ import annotations

import secrets
import struct
from typing import Final

from fedimint_gw.crypto.bls.fields import R
from fedimint_gw.crypto.errors import CryptoError

SEED_SIZE: Final[int] = 32
"""Length in bytes of a ChaCha seed (the ChaCha20 key)."""

_MASK32: Final[int] = 0xFFFFFFFF
_CONSTANTS: Final[tuple[int, int, int, int]] = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)
_BLOCK_WORDS: Final[int] = 16


def _rotl(value: int, shift: int) -> int:
    return ((value << shift) & _MASK32) | (value >> (32 - shift))


def _quarter_round(s: list[int], a: int, b: int, c: int, d: int) -> None:
    s[a] = (s[a] + s[b]) & _MASK32
    s[d] = _rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & _MASK32
    s[b] = _rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & _MASK32
    s[d] = _rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & _MASK32
    s[b] = _rotl(s[b] ^ s[c], 7)


def chacha20_block(key_words: tuple[int, ...], counter: int, stream: int = 0) -> list[int]:
    """Return the 16 output words of ChaCha20 block ``counter`` (64-bit counter, 64-bit stream)."""
    initial = [
        *_CONSTANTS,
        *key_words,
        counter & _MASK32,
        (counter >> 32) & _MASK32,
        stream & _MASK32,
        (stream >> 32) & _MASK32,
    ]
    state = list(initial)
    for _ in range(10):
        _quarter_round(state, 0, 4, 8, 12)
        _quarter_round(state, 1, 5, 9, 13)
        _quarter_round(state, 2, 6, 10, 14)
        _quarter_round(state, 3, 7, 11, 15)
        _quarter_round(state, 0, 5, 10, 15)
        _quarter_round(state, 1, 6, 11, 12)
        _quarter_round(state, 2, 7, 8, 13)
        _quarter_round(state, 3, 4, 9, 14)
    return [(x + y) & _MASK32 for x, y in zip(state, initial, strict=True)]


class ChaChaRng:
    """A deterministic ``rand_chacha`` 0.3 ``ChaChaRng::from_seed(seed)``.

    It is a stateful stream, deliberately not a value type: every draw advances it.
    """

    __slots__ = ("_buffer", "_counter", "_index", "_key")

    def __init__(self, seed: bytes) -> None:
        if len(seed) != SEED_SIZE:
            raise CryptoError(f"a ChaCha seed is {SEED_SIZE} bytes, got {len(seed)}")
        self._key: tuple[int, ...] = struct.unpack("<8I", seed)
        self._counter = 0
        self._buffer: list[int] = []
        self._index = 0

    @classmethod
    def from_os_entropy(cls) -> ChaChaRng:
        """Return a generator seeded from the operating system's CSPRNG."""
        return cls(secrets.token_bytes(SEED_SIZE))

    def next_u32(self) -> int:
        """Return the next 32-bit output word."""
        if self._index >= len(self._buffer):
            self._buffer = chacha20_block(self._key, self._counter)
            self._counter += 1
            self._index = 0
        word = self._buffer[self._index]
        self._index += 1
        return word

    def fill_bytes(self, length: int) -> bytes:
        """Return ``length`` bytes: whole words, little-endian, a partial last word truncated."""
        words = [self.next_u32() for _ in range((length + 3) // 4)]
        return struct.pack(f"<{len(words)}I", *words)[:length]


def scalar_random(rng: ChaChaRng) -> int:
    """``Scalar::random``: 64 bytes from ``rng`` read as a little-endian integer, reduced mod r."""
    return int.from_bytes(rng.fill_bytes(64), "little") % R


def scalar_from_seed(seed: bytes) -> int:
    """``Scalar::random(ChaChaRng::from_seed(seed))``: the scalar Fedimint derives from a seed."""
    return scalar_random(ChaChaRng(seed))
