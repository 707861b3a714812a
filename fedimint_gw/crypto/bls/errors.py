"""Errors of the BLS12-381 schemes; all are :class:`CryptoError`."""

from __future__ import annotations

from fedimint_gw.crypto.errors import CryptoError


class InvalidCiphertextError(CryptoError):
    """A ciphertext failed its own validity check where the scheme requires a valid one.

    Fedimint's tpe ``verify_dk_share`` / ``verify_agg_dk`` panic on an invalid ciphertext and
    threshold_crypto's ``decrypt_share`` returns None; here both raise this error.
    """


class NotEnoughSharesError(CryptoError):
    """Fewer shares were given than the scheme needs to combine them."""

    def __init__(self, needed: int, given: int) -> None:
        super().__init__(f"need {needed} shares, got {given}")
        self.needed = needed
        self.given = given
