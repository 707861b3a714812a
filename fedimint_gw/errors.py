"""Typed gateway errors with unique, stable codes.

Every error the gateway raises on purpose is a `GatewayError`. Each subclass carries a
stable numeric `code` (the JSON-RPC error code an operator or script can match on) and a
message written for an operator. Errors are translated to JSON-RPC or HTTP answers only at
the two boundaries (the plugin's RPC bridge and the HTTP app); nowhere else catches them to
turn them into results, and no traceback ever reaches a caller.

Codes live in 2100-2199, clear of Core Lightning's own command codes.
"""

from __future__ import annotations

from typing import ClassVar


class GatewayError(Exception):
    """Base class of every deliberate gateway error."""

    code: ClassVar[int] = 2100
    http_status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_json(self) -> dict[str, object]:
        """The error as a JSON object: stable code, its name and the message."""
        return {"code": self.code, "error": type(self).__name__, "message": self.message}


class InvalidInput(GatewayError):
    """A parameter is malformed or out of range. Nothing was changed."""

    code = 2101
    http_status = 400


class RateLimited(GatewayError):
    """The client made too many requests; it may retry after the time the answer gives."""

    code = 2160
    http_status = 429


class UnsupportedMediaType(GatewayError):
    """A request body that is not declared as JSON (Content-Type: application/json)."""

    code = 2161
    http_status = 415


class NotFound(GatewayError):
    """The federation, payment, contract or peer named does not exist here."""

    code = 2102
    http_status = 404


class AlreadyExists(GatewayError):
    """The thing to create exists already (for example a federation already joined)."""

    code = 2103
    http_status = 409


class NotReady(GatewayError):
    """The gateway has not finished starting, or is shutting down."""

    code = 2104
    http_status = 503


class FederationUnreachable(GatewayError):
    """Not enough guardians answered in time."""

    code = 2110
    http_status = 502


class FederationRejected(GatewayError):
    """The federation refused a request (invalid transaction, double spend, ...)."""

    code = 2111
    http_status = 502


class IncompatibleFederation(GatewayError):
    """No installed adapter speaks an API version the federation serves."""

    code = 2112
    http_status = 400


class FederationMisbehaved(GatewayError):
    """A guardian answered something that fails verification (bad share, bad proof)."""

    code = 2113
    http_status = 502


class InsufficientFunds(GatewayError):
    """The gateway's ecash or Lightning liquidity cannot cover the payment."""

    code = 2120
    http_status = 400


class PaymentRefused(GatewayError):
    """A payment request breaks a rule: fee too low, timelock too short, expired, paid."""

    code = 2121
    http_status = 400


class LightningFailure(GatewayError):
    """Core Lightning refused or failed a call the gateway made."""

    code = 2130
    http_status = 502


class PeerError(GatewayError):
    """A peer gateway refused, failed authentication, or broke the protocol."""

    code = 2140
    http_status = 502


class StoreError(GatewayError):
    """The database could not be opened or migrated."""

    code = 2150
    http_status = 500


def all_error_classes() -> list[type[GatewayError]]:
    """Every GatewayError class, base included (used to check that codes are unique)."""
    found: list[type[GatewayError]] = []
    pending: list[type[GatewayError]] = [GatewayError]
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


class LeaveUnanswered(Exception):
    """Not an error: a held HTLC must get no answer now (the gateway is shutting down, or its
    flow was cancelled). lightningd keeps it and replays it to the hook after its restart."""
