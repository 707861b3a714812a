"""Trusted-dealer key generation for tests and the development federation.

A real federation runs a distributed key generation; the result has the same shape: a secret
polynomial of degree ``threshold - 1`` whose value at ``x = peer + 1`` is the 0-based peer's
secret share and whose constant term is the master secret. Every scheme here uses that
``x = peer + 1`` convention.
"""

from __future__ import annotations

import hashlib
import secrets

from fedimint_gw.crypto.bls.chacha import scalar_from_seed
from fedimint_gw.crypto.bls.fields import R
from fedimint_gw.crypto.bls.group import peer_x, poly_eval
from fedimint_gw.crypto.errors import CryptoError


def seeded_coefficients(threshold: int) -> list[int]:
    """The deterministic polynomial of Fedimint's tbs/tpe tests (and of the vectors).

    Coefficient ``i`` is ``Scalar::random(ChaChaRng::from_seed(SHA-256(i as 8-byte big-endian)))``
    for ``i = 0 .. threshold - 1``. Never use it for real keys: anyone can recompute it.
    """
    _check_threshold(threshold)
    return [scalar_from_seed(hashlib.sha256(i.to_bytes(8, "big")).digest()) for i in range(threshold)]


def random_coefficients(threshold: int) -> list[int]:
    """A fresh secret polynomial of degree ``threshold - 1`` from the OS CSPRNG (non-zero secret)."""
    _check_threshold(threshold)
    return [secrets.randbelow(R - 1) + 1 for _ in range(threshold)]


def secret_shares(coefficients: list[int], peers: int) -> list[int]:
    """Return the secret share of each 0-based peer ``p``: the polynomial at ``x = p + 1``."""
    if not coefficients:
        raise CryptoError("a polynomial needs at least one coefficient")
    if peers < len(coefficients):
        raise CryptoError(f"{peers} peers cannot reach a threshold of {len(coefficients)}")
    return [poly_eval(coefficients, peer_x(p)) for p in range(peers)]


def _check_threshold(threshold: int) -> None:
    if threshold < 1:
        raise CryptoError(f"threshold must be >= 1, got {threshold}")
