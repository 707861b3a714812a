"""``fedimint-threshold-crypto`` 0.2.1 threshold encryption, used by LNv1 for preimages.

Keys live on G1: ``PublicKeySet`` is the commitment ``[G1 * c_0, G1 * c_1, ...]`` of a secret
polynomial of degree ``threshold``; ``threshold + 1`` shares decrypt. Encryption of ``msg`` to
the master key ``pk = G1 * c_0`` with a random scalar ``r``:

- ``U = G1 * r``, ``V = msg XOR keystream(pk * r)``, ``W = hash_g1_g2(U, V) * r``;
- the keystream is ChaCha seeded with SHA3-256(compressed point), one byte per 32-bit word
  (the low 8 bits; :func:`xor_with_hash`);
- ``hash_g1_g2(g1, m) = hash_g2(m' || compressed g1)`` with ``m' = m`` up to 64 bytes, else
  SHA3-256(m); ``hash_g2(m)`` = G2-random seeded with SHA3-256(m).

A ciphertext is valid when ``e(G1, W) = e(U, hash_g1_g2(U, V))``. Guardian ``i`` answers
``U * sk_i`` (48 bytes), checked with ``e(D_i, hash_g1_g2(U, V)) = e(pk_i, W)``.

**Index convention**: share indices are 0-based (Fedimint passes the ``PeerId``); share ``i`` is
the polynomial at ``x = i + 1``. :func:`decrypt` uses the first ``threshold + 1`` shares in the
order given, like ``PublicKeySet::decrypt``.

Encodings: ``Ciphertext.to_bytes()`` is ``U (48) || W (96) || V``; Fedimint's consensus encoding
is that as a ``Vec<u8>`` (BigSize length prefix). ``PublicKeySet`` encodes as BigSize(count) ||
48 bytes per coefficient.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from py_arkworks_bls12381 import G1Point, G2Point

from fedimint_gw.crypto.bls.chacha import ChaChaRng, scalar_random
from fedimint_gw.crypto.bls.curve import g2_random
from fedimint_gw.crypto.bls.errors import InvalidCiphertextError, NotEnoughSharesError
from fedimint_gw.crypto.bls.group import (
    G1_BYTES,
    G2_BYTES,
    G1Element,
    ScalarElement,
    g1_from_bytes,
    g1_generator,
    g1_interpolate,
    g1_mul,
    g2_from_bytes,
    g2_mul,
    pairings_equal,
    peer_x,
    poly_eval,
)
from fedimint_gw.crypto.errors import CryptoError

HASH_G1_G2_MAX_INLINE: Final[int] = 64
"""Messages longer than this are SHA3-256 hashed before :func:`hash_g1_g2`."""


@dataclass(frozen=True)
class PublicKey(G1Element):
    """The master public key ``G1 * c_0``."""


@dataclass(frozen=True)
class PublicKeyShare(G1Element):
    """Guardian ``i``'s public share ``G1 * poly(i + 1)``."""


@dataclass(frozen=True, repr=False)
class SecretKeyShare(ScalarElement):
    """Guardian ``i``'s secret share ``poly(i + 1)``."""


@dataclass(frozen=True)
class DecryptionShare(G1Element):
    """Guardian ``i``'s decryption share ``U * sk_i`` (48 bytes)."""


@dataclass(frozen=True)
class PublicKeySet:
    """The public commitment to the secret polynomial: ``G1 * c_j`` for each coefficient."""

    commitment: tuple[G1Point, ...]

    def __post_init__(self) -> None:
        if not self.commitment:
            raise CryptoError("a public key set needs at least one coefficient")

    @property
    def threshold(self) -> int:
        """The polynomial's degree: ``threshold + 1`` shares are needed to decrypt."""
        return len(self.commitment) - 1

    def public_key(self) -> PublicKey:
        """The master public key (the commitment's constant term)."""
        return PublicKey(self.commitment[0])

    def public_key_share(self, index: int) -> PublicKeyShare:
        """The public share of 0-based index ``index``: the commitment evaluated at ``index + 1``."""
        x = peer_x(index)
        acc = G1Point.identity()
        for point in reversed(self.commitment):
            acc = g1_mul(acc, x) + point
        return PublicKeyShare(acc)

    def encode(self) -> bytes:
        """Consensus encoding: BigSize(count) || 48 bytes per coefficient."""
        return _bigsize(len(self.commitment)) + b"".join(p.to_compressed_bytes() for p in self.commitment)

    @classmethod
    def decode(cls, data: bytes) -> PublicKeySet:
        """Parse the consensus encoding (points checked)."""
        count, offset = _read_bigsize(data)
        if len(data) - offset != count * G1_BYTES:
            raise CryptoError("public key set length does not match its coefficient count")
        return cls(
            tuple(
                g1_from_bytes(data[offset + i * G1_BYTES : offset + (i + 1) * G1_BYTES]) for i in range(count)
            )
        )


@dataclass(frozen=True, repr=False)
class SecretKeySet:
    """A dealer's secret polynomial (tests and the development federation only)."""

    coefficients: tuple[int, ...]

    @classmethod
    def random(cls, threshold: int, rng: ChaChaRng) -> SecretKeySet:
        """``SecretKeySet::random(threshold, rng)``: ``threshold + 1`` successive ``Scalar::random``."""
        if threshold < 0:
            raise CryptoError("threshold must be >= 0")
        return cls(tuple(scalar_random(rng) for _ in range(threshold + 1)))

    def secret_key_share(self, index: int) -> SecretKeyShare:
        """The secret share of 0-based index ``index``: the polynomial at ``index + 1``."""
        return SecretKeyShare(poly_eval(self.coefficients, peer_x(index)))

    def public_keys(self) -> PublicKeySet:
        """The public commitment of this polynomial."""
        return PublicKeySet(tuple(g1_mul(g1_generator(), c) for c in self.coefficients))


@dataclass(frozen=True)
class Ciphertext:
    """``(U, V, W)`` of the crate; ``to_bytes`` orders them U, W, V."""

    u: G1Point
    v: bytes
    w: G2Point

    def to_bytes(self) -> bytes:
        """The crate's ``to_bytes``: U (48) || W (96) || V."""
        return self.u.to_compressed_bytes() + self.w.to_compressed_bytes() + self.v

    @classmethod
    def from_bytes(cls, data: bytes) -> Ciphertext:
        """Parse :meth:`to_bytes` output (points checked; V may be empty)."""
        if len(data) < G1_BYTES + G2_BYTES:
            raise CryptoError("threshold_crypto ciphertext too short")
        return cls(
            u=g1_from_bytes(data[:G1_BYTES]),
            v=bytes(data[G1_BYTES + G2_BYTES :]),
            w=g2_from_bytes(data[G1_BYTES : G1_BYTES + G2_BYTES]),
        )

    def encode(self) -> bytes:
        """Fedimint's consensus encoding: ``to_bytes`` as a ``Vec<u8>`` (BigSize length prefix)."""
        raw = self.to_bytes()
        return _bigsize(len(raw)) + raw

    @classmethod
    def decode(cls, data: bytes) -> Ciphertext:
        """Parse the consensus encoding; the length prefix must match the rest exactly."""
        length, offset = _read_bigsize(data)
        if len(data) - offset != length:
            raise CryptoError("ciphertext length prefix does not match")
        return cls.from_bytes(data[offset:])


def hash_g2(msg: bytes) -> G2Point:
    """G2-random seeded with SHA3-256(msg)."""
    return g2_random(ChaChaRng(hashlib.sha3_256(msg).digest()))


def hash_g1_g2(g1: G1Point, msg: bytes) -> G2Point:
    """``hash_g2(m' || compressed g1)``, ``m'`` = msg, or its SHA3-256 if longer than 64 bytes."""
    head = msg if len(msg) <= HASH_G1_G2_MAX_INLINE else hashlib.sha3_256(msg).digest()
    return hash_g2(head + g1.to_compressed_bytes())


def xor_with_hash(g1: G1Point, data: bytes) -> bytes:
    """XOR ``data`` with ChaCha(SHA3-256(compressed g1)), one keystream byte per 32-bit word."""
    rng = ChaChaRng(hashlib.sha3_256(g1.to_compressed_bytes()).digest())
    return bytes(b ^ (rng.next_u32() & 0xFF) for b in data)


def encrypt_with_rng(pk: PublicKey, msg: bytes, rng: ChaChaRng) -> Ciphertext:
    """``PublicKey::encrypt_with_rng``: ``r = Scalar::random(rng)``, then U, V, W as above."""
    r = scalar_random(rng)
    u = g1_mul(g1_generator(), r)
    v = xor_with_hash(g1_mul(pk.point, r), msg)
    w = g2_mul(hash_g1_g2(u, v), r)
    return Ciphertext(u=u, v=v, w=w)


def encrypt(pk: PublicKey, msg: bytes) -> Ciphertext:
    """Encrypt with fresh OS randomness (what Fedimint does with ``OsRng``)."""
    return encrypt_with_rng(pk, msg, ChaChaRng.from_os_entropy())


def verify_ciphertext(ct: Ciphertext) -> bool:
    """``Ciphertext::verify``: ``e(G1, W) == e(U, hash_g1_g2(U, V))``."""
    return pairings_equal(g1_generator(), ct.w, ct.u, hash_g1_g2(ct.u, ct.v))


def decrypt_share(sk: SecretKeyShare, ct: Ciphertext) -> DecryptionShare:
    """``SecretKeyShare::decrypt_share``: ``U * sk_i``; :class:`InvalidCiphertextError` if invalid."""
    if not verify_ciphertext(ct):
        raise InvalidCiphertextError("threshold_crypto ciphertext does not verify")
    return DecryptionShare(g1_mul(ct.u, sk.scalar))


def verify_decryption_share(pk: PublicKeyShare, share: DecryptionShare, ct: Ciphertext) -> bool:
    """``PublicKeyShare::verify_decryption_share``: ``e(D_i, hash_g1_g2(U, V)) == e(pk_i, W)``."""
    return pairings_equal(share.point, hash_g1_g2(ct.u, ct.v), pk.point, ct.w)


def decrypt(pk_set: PublicKeySet, shares: Iterable[tuple[int, DecryptionShare]], ct: Ciphertext) -> bytes:
    """``PublicKeySet::decrypt``: combine the FIRST ``threshold + 1`` ``(index, share)`` pairs.

    Indices are 0-based (x = index + 1); extra pairs are ignored; fewer raise
    :class:`NotEnoughSharesError`. Like the crate, it checks neither the ciphertext nor the
    shares: verify them first, or the result is garbage.
    """
    needed = pk_set.threshold + 1
    chosen: list[tuple[int, DecryptionShare]] = []
    for pair in shares:
        if len(chosen) == needed:
            break
        chosen.append(pair)
    if len(chosen) < needed:
        raise NotEnoughSharesError(needed, len(chosen))
    shared = g1_interpolate([(peer_x(i), s.point) for i, s in chosen])
    return xor_with_hash(shared, ct.v)


def _bigsize(value: int) -> bytes:
    if value < 0xFD:
        return bytes([value])
    if value <= 0xFFFF:
        return b"\xfd" + value.to_bytes(2, "big")
    if value <= 0xFFFFFFFF:
        return b"\xfe" + value.to_bytes(4, "big")
    return b"\xff" + value.to_bytes(8, "big")


def _read_bigsize(data: bytes) -> tuple[int, int]:
    if not data:
        raise CryptoError("missing BigSize length")
    width = {0xFD: 2, 0xFE: 4, 0xFF: 8}.get(data[0], 0)
    if width == 0:
        return data[0], 1
    if len(data) < 1 + width:
        raise CryptoError("truncated BigSize length")
    value = int.from_bytes(data[1 : 1 + width], "big")
    if _bigsize(value) != data[: 1 + width]:
        raise CryptoError("non-canonical BigSize length")
    return value, 1 + width
