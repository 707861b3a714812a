"""devfed error codes: one enum, one exception, mapped to HTTP (v1) and JSON-RPC (v2) at the edges."""

from __future__ import annotations

from enum import Enum


class ErrorCode(Enum):
    """Stable error names with their numeric codes and v1 HTTP statuses.

    The value is ``(code, http_status)``; ``name.lower()`` is the stable error name.
    """

    MALFORMED_JSON = (1000, 400)
    INVALID_REQUEST = (1001, 400)
    UNKNOWN_METHOD = (1002, 404)
    UNKNOWN_TRANSACTION = (1003, 404)
    UNKNOWN_CONTRACT = (1004, 404)
    UNKNOWN_OFFER = (1005, 404)
    UNKNOWN_GUARDIAN = (1006, 404)
    INVALID_NOTE = (1010, 422)
    DOUBLE_SPEND = (1011, 409)
    UNBALANCED = (1012, 422)
    BAD_SIGNATURE = (1013, 422)
    CONTRACT_STATE = (1014, 409)
    CONTRACT_EXISTS = (1015, 409)
    OFFER_EXISTS = (1016, 409)
    OFFER_EXPIRED = (1017, 409)
    TIMELOCK = (1018, 409)
    FAUCET_LIMIT = (1019, 422)
    NOT_FUNDED = (1020, 409)
    UNSUPPORTED = (1021, 422)
    NO_CONSENSUS = (1030, 503)
    GUARDIAN_OFFLINE = (1031, 503)
    INTERNAL = (1099, 500)

    @property
    def code(self) -> int:
        """The numeric code (stable)."""
        return self.value[0]

    @property
    def http_status(self) -> int:
        """The HTTP status used by API v1 and the admin API."""
        return self.value[1]

    @property
    def error_name(self) -> str:
        """The stable lowercase name, e.g. ``double_spend``."""
        return self.name.lower()

    @classmethod
    def from_name(cls, name: str) -> ErrorCode:
        """Look a code up by its lowercase name; unknown names map to INTERNAL."""
        try:
            return cls[name.upper()]
        except KeyError:
            return cls.INTERNAL


class DevfedError(Exception):
    """A request the federation (or a client) refuses, with a stable code and a clear message."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code.error_name}: {message}")
        self.code = code
        self.message = message

    def to_dict(self) -> dict[str, object]:
        """The v1 error body: ``{"code": int, "name": str, "message": str}``."""
        return {"code": self.code.code, "name": self.code.error_name, "message": self.message}
