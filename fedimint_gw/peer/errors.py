"""Peer protocol errors, each with a stable code and the `peer_code` the wire carries.

They subclass `PeerError` (fedimint_gw.errors) so the two boundaries translate them like any other
GatewayError; `peer_code` is what another implementation matches on (docs/peer-protocol.md §8).
"""

from __future__ import annotations

from typing import ClassVar

from fedimint_gw.errors import (
    GatewayError,
    InsufficientFunds,
    InvalidInput,
    NotFound,
    NotReady,
    PaymentRefused,
    PeerError,
)


class PeerAuthFailed(PeerError):
    """A request's authentication failed: missing headers, bad signature, or a stale time."""

    code = 2141
    http_status = 401

    def __init__(self, message: str, peer_code: str = "unauthenticated") -> None:
        super().__init__(message)
        self.peer_code = peer_code


class PeerReplayed(PeerError):
    """A request reused a nonce already seen inside the time window."""

    code = 2142
    http_status = 401
    peer_code: ClassVar[str] = "replayed"


class UnknownPeer(PeerError):
    """The sender is not a peer this operator added (or it was removed)."""

    code = 2143
    http_status = 403
    peer_code: ClassVar[str] = "unknown_peer"


class UnsupportedVersion(PeerError):
    """No protocol version both sides speak."""

    code = 2144
    http_status = 400
    peer_code: ClassVar[str] = "unsupported_version"


class CreditExceeded(PeerError):
    """The forward would take the debtor past the credit line."""

    code = 2145
    http_status = 409
    peer_code: ClassVar[str] = "credit_exceeded"


class NoDestination(PeerError):
    """The invoice ends in no receive this gateway serves or routes to."""

    code = 2146
    http_status = 404
    peer_code: ClassVar[str] = "no_destination"


class PeerRefused(PeerError):
    """The peer answered with an error: it certainly did not start what was asked (client side)."""

    code = 2147
    http_status = 502

    def __init__(self, message: str, peer_code: str, status: int, signed: bool = True) -> None:
        super().__init__(message)
        self.peer_code = peer_code
        self.status = status
        self.signed = signed  # False: an auth refusal that may come from a proxy, not the peer


class PeerUnreachable(PeerError):
    """No connection to the peer could be made: the request was certainly not delivered."""

    code = 2148
    http_status = 502


class PeerOutcomeUnknown(PeerError):
    """The request may have been delivered but no valid answer came back (timeout, 5xx, bad signature)."""

    code = 2149
    http_status = 504


# peer_code on the wire for the gateway's general errors (docs/peer-protocol.md §8).
_GENERAL: dict[type[GatewayError], str] = {
    InsufficientFunds: "insufficient_liquidity",
    PaymentRefused: "refused",
    InvalidInput: "invalid",
    NotFound: "not_found",
    NotReady: "not_ready",
}

# Refusals a receiver decides only after it accepted the request's nonce, having done nothing:
# signed by the receiver, they are about that very request. The authentication refusals
# (`unauthenticated`, `bad_signature`, `stale`, `replayed`) are not among them: they refuse one
# delivery of a request, and an earlier delivery of the same request (a proxy or an HTTP layer
# that sent it twice) may have started it. A `replayed` answer to our own fresh nonce means
# exactly that. Neither is an unsigned answer (anything in between can send one) or a 5xx.
NOT_STARTED = frozenset(
    {
        "unknown_peer",
        "unsupported_version",
        "credit_exceeded",
        "no_destination",
        "insufficient_liquidity",
        "refused",
        "invalid",
    }
)


def proves_not_started(exc: PeerRefused) -> bool:
    """Whether a refusal proves the receiver never started what the request asked for: only a
    refusal signed by the receiver, below HTTP 500, with a `peer_code` in `NOT_STARTED`."""
    return exc.signed and exc.status < 500 and exc.peer_code in NOT_STARTED


def peer_code_of(exc: GatewayError) -> str:
    """The wire `peer_code` of an error raised while handling a peer request."""
    code = getattr(exc, "peer_code", None)
    if isinstance(code, str):
        return code
    for cls, name in _GENERAL.items():
        if isinstance(exc, cls):
            return name
    return "internal"
