"""Typed errors of the Fedimint protocol package.

All derive from `FedimintProtocolError`, itself a `GatewayError`, so the RPC and HTTP
boundaries translate them like every other gateway error. Codes 2190-2199 are reserved for
this package.
"""

from __future__ import annotations

from fedimint_gw.errors import GatewayError


class FedimintProtocolError(GatewayError):
    """Something in Fedimint's protocol went wrong (bad bytes, bad answers, no quorum)."""

    code = 2190
    http_status = 502


class DecodeError(FedimintProtocolError):
    """Bytes, JSON or a string that are not a valid (canonical) Fedimint encoding.

    The source may be a user (an invite code typed in) or a guardian; a caller that got the
    bytes from a guardian should treat this as that guardian misbehaving.
    """

    code = 2191
    http_status = 400


class EncodeError(FedimintProtocolError):
    """A value that cannot be encoded (an integer out of range, a wrong-sized key)."""

    code = 2192
    http_status = 500


class GuardianRpcError(FedimintProtocolError):
    """One guardian answered a JSON-RPC error object, or broke the JSON-RPC framing."""

    code = 2193

    def __init__(self, message: str, rpc_code: int | None = None) -> None:
        super().__init__(message)
        self.rpc_code = rpc_code


class ThresholdNotReached(FedimintProtocolError):
    """Not enough guardians gave the same answer in time (offline, slow or disagreeing)."""

    code = 2194


class NoValidAnswer(FedimintProtocolError):
    """No guardian gave an answer that passed the caller's verification."""

    code = 2195


class IncompatibleVersions(FedimintProtocolError):
    """No API version of the core that this client speaks is served by the federation."""

    code = 2196
    http_status = 400


class ConfigMismatch(FedimintProtocolError):
    """A client config that does not hash to the expected federation id."""

    code = 2197
    http_status = 502
