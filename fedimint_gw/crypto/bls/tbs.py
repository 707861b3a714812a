"""Fedimint's threshold blind BLS signatures (``crypto/tbs``), used by the mint module.

Keys: each guardian holds a secret key share ``sk_i`` (a scalar) and publishes ``pk_i = G2 * sk_i``;
the federation's aggregate public key is ``G2 * sk`` (G2 keys, G1 signatures). A note's message
is ``M = hash(nonce)`` on G1 (:func:`message_from_bytes`). The client blinds ``B = M * r``, each
guardian signs ``S_i = B * sk_i``, the client checks every share with ``e(B, pk_i) = e(S_i, G2)``,
combines a threshold of them with Lagrange coefficients at 0 and unblinds ``S = S_b * r^-1``,
which verifies as ``e(M, apk) = e(S, G2)``.

**Index convention**: maps of shares are keyed by the 0-based Fedimint ``PeerId``; peer ``p`` is
the polynomial's value at ``x = p + 1`` (as the current tbs crate does internally; older versions
took already-incremented keys, which gives the same x).

Encodings (``encode``/``decode`` on every type) are Fedimint's consensus encodings: scalars 32
bytes little-endian, G1 values 48 bytes and G2 values 96 bytes compressed, no length prefixes.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fedimint_gw.crypto.bls.chacha import ChaChaRng
from fedimint_gw.crypto.bls.curve import g1_random
from fedimint_gw.crypto.bls.dealer import secret_shares
from fedimint_gw.crypto.bls.fields import R
from fedimint_gw.crypto.bls.group import (
    G1Element,
    G2Element,
    ScalarElement,
    g1_interpolate,
    g1_mul,
    g2_generator,
    g2_interpolate,
    g2_mul,
    pairings_equal,
    peer_x,
)
from fedimint_gw.crypto.errors import CryptoError

MESSAGE_TAG = b"TBS_BLS12-381_"
"""Prefix hashed (SHA3-256) with the data to seed :func:`message_from_bytes`."""

MESSAGE_SHA256_TAG = b"FEDIMINT_TBS_BLS12_381_MESSAGE"
"""Prefix hashed (SHA-256) with the data to seed :func:`message_from_bytes_sha256`."""


@dataclass(frozen=True, repr=False)
class SecretKeyShare(ScalarElement):
    """A guardian's secret signing share."""


@dataclass(frozen=True)
class PublicKeyShare(G2Element):
    """A guardian's public share ``G2 * sk_i``."""


@dataclass(frozen=True)
class AggregatePublicKey(G2Element):
    """The federation's public key ``G2 * sk`` for one denomination."""


@dataclass(frozen=True)
class Message(G1Element):
    """A message hashed to G1 (for e-cash: the note nonce)."""


@dataclass(frozen=True, repr=False)
class BlindingKey(ScalarElement):
    """The client's blinding factor ``r`` (non-zero)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.scalar == 0:
            raise CryptoError("a blinding key must not be zero")

    @classmethod
    def random(cls) -> BlindingKey:
        """Return a fresh blinding key from the OS CSPRNG."""
        return cls(secrets.randbelow(R - 1) + 1)


@dataclass(frozen=True)
class BlindedMessage(G1Element):
    """``M * r``: what the client sends (the mint's ``BlindNonce``)."""


@dataclass(frozen=True)
class BlindedSignatureShare(G1Element):
    """``B * sk_i``: one guardian's answer (the mint's output outcome)."""


@dataclass(frozen=True)
class BlindedSignature(G1Element):
    """The combined signature on the blinded message."""


@dataclass(frozen=True)
class Signature(G1Element):
    """The unblinded signature ``M * sk`` (the e-cash note's signature)."""


@dataclass(frozen=True)
class DealerKeys:
    """Keys made by a trusted dealer; tuples are indexed by 0-based peer id."""

    aggregate_public_key: AggregatePublicKey
    public_key_shares: tuple[PublicKeyShare, ...]
    secret_key_shares: tuple[SecretKeyShare, ...]


def dealer_keys(coefficients: Sequence[int], peers: int) -> DealerKeys:
    """Deal keys from a secret polynomial (``coefficients[0]`` is the master secret).

    Peer ``p`` gets the polynomial at ``x = p + 1``; see :mod:`fedimint_gw.crypto.bls.dealer`.
    """
    shares = [SecretKeyShare(s) for s in secret_shares(list(coefficients), peers)]
    return DealerKeys(
        aggregate_public_key=AggregatePublicKey(g2_mul(g2_generator(), coefficients[0])),
        public_key_shares=tuple(derive_public_key_share(s) for s in shares),
        secret_key_shares=tuple(shares),
    )


def derive_public_key_share(sk: SecretKeyShare) -> PublicKeyShare:
    """Return ``G2 * sk``."""
    return PublicKeyShare(g2_mul(g2_generator(), sk.scalar))


def message_from_bytes(data: bytes) -> Message:
    """Fedimint's ``Message::from_bytes``: G1-random seeded with SHA3-256(tag || data).

    For a mint note, ``data`` is the 33-byte compressed nonce (the note's spend public key).
    """
    return Message(g1_random(ChaChaRng(hashlib.sha3_256(MESSAGE_TAG + data).digest())))


def message_from_bytes_sha256(data: bytes) -> Message:
    """``Message::from_bytes_sha256`` of newer trees (not used by mint v1 notes)."""
    return Message(g1_random(ChaChaRng(hashlib.sha256(MESSAGE_SHA256_TAG + data).digest())))


def blind_message(msg: Message, key: BlindingKey) -> BlindedMessage:
    """Return ``B = M * r``."""
    return BlindedMessage(g1_mul(msg.point, key.scalar))


def sign_message(msg: BlindedMessage, sk: SecretKeyShare) -> BlindedSignatureShare:
    """A guardian's share ``S_i = B * sk_i``."""
    return BlindedSignatureShare(g1_mul(msg.point, sk.scalar))


def verify_signature_share(msg: BlindedMessage, share: BlindedSignatureShare, pk: PublicKeyShare) -> bool:
    """Check ``e(B, pk_i) == e(S_i, G2)``: the share was made with the secret behind ``pk``."""
    return pairings_equal(msg.point, pk.point, share.point, g2_generator())


def aggregate_signature_shares(shares: Mapping[int, BlindedSignatureShare]) -> BlindedSignature:
    """Combine shares keyed by 0-based peer id (x = peer + 1) by Lagrange interpolation at 0.

    Give exactly the threshold number of valid shares or more; extra valid shares do no harm. A
    single share (1-of-1) comes back unchanged. Verify shares first: one bad share spoils it.
    """
    return BlindedSignature(g1_interpolate([(peer_x(p), s.point) for p, s in shares.items()]))


def aggregate_public_key_shares(shares: Mapping[int, PublicKeyShare]) -> AggregatePublicKey:
    """Interpolate public key shares keyed by 0-based peer id (x = peer + 1) at 0."""
    return AggregatePublicKey(g2_interpolate([(peer_x(p), s.point) for p, s in shares.items()]))


def verify_blinded_signature(msg: BlindedMessage, sig: BlindedSignature, pk: AggregatePublicKey) -> bool:
    """Check ``e(B, apk) == e(S_b, G2)``."""
    return pairings_equal(msg.point, pk.point, sig.point, g2_generator())


def unblind_signature(key: BlindingKey, sig: BlindedSignature) -> Signature:
    """Return ``S = S_b * r^-1``."""
    return Signature(g1_mul(sig.point, pow(key.scalar, -1, R)))


def verify(msg: Message, sig: Signature, pk: AggregatePublicKey) -> bool:
    """Check ``e(M, apk) == e(S, G2)``: the note signature is valid for the federation key."""
    return pairings_equal(msg.point, pk.point, sig.point, g2_generator())
