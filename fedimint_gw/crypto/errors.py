"""Errors raised by the cryptographic primitives.

This module is deliberately standalone: the project-wide error hierarchy lives elsewhere
and may wrap these errors at its boundaries.
"""

from __future__ import annotations


class CryptoError(Exception):
    """A cryptographic operation failed or was given malformed or degenerate input.

    Degenerate input includes a zero scalar where a non-zero one is required and any
    operation whose result would be the point at infinity, which coincurve cannot represent.
    """


class InvalidShareError(CryptoError):
    """A guardian's share failed verification or cannot be used.

    Attributes:
        index: the Shamir index (1-based guardian number) of the offending share.
    """

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(f"share from guardian index {index} rejected: {reason}")
        self.index = index
        self.reason = reason
