"""Parsing operator input at the boundary: numbers, booleans, ids and URLs, strictly.

Every `fedimint-*` command parses its parameters here, into domain types, before anything
else happens, so a malformed value is refused with `InvalidInput` (code 2101) and changes
nothing. The rules, and why:
- numbers are ASCII digits only: `str.isdigit` and `int()` also accept other scripts'
  digits (`"१२३"` is 123), which a script or a paste can carry in by accident;
- integers have documented bounds: nothing reaches SQLite or the federations beyond them;
- booleans are `true`/`false` (JSON or text), nothing that only looks like one;
- ids are exact: hex of the right length, no surrounding whitespace (a trailing newline
  is not the same peer);
- URLs are http(s) with a host, and bracketed IPv6 hosts must be valid addresses.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from fedimint_gw.domain.amount import MAX_MSAT, FeeSchedule, Msat
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.errors import InvalidInput

MAX_INTEGER = 2**63 - 1  # SQLite's INTEGER and the JSON-RPC integers of lightningd
MAX_BASE_FEE_MSAT = 1_000_000_000  # 1,000,000 sat per payment; the same bound as the options
MAX_PPM = 1_000_000  # 100 %
MAX_URL_LENGTH = 2048

_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_AMOUNT = re.compile(r"([0-9]+)(msat|sat)?", re.ASCII)
_HEX64 = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)
_NODE_ID = re.compile(r"0[23][0-9a-fA-F]{64}", re.ASCII)


def absent(raw: object) -> bool:
    """Whether an optional parameter was left out (lightning-cli passes "" or null)."""
    return raw is None or raw == ""


def integer(raw: object, name: str, low: int = 0, high: int = MAX_INTEGER) -> int:
    """A JSON integer or a string of ASCII digits, from `low` to `high` inclusive."""
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str):
        negative = raw.startswith("-") and low < 0
        digits = raw[1:] if negative else raw
        if _DIGITS.fullmatch(digits) and len(digits) <= 20:
            value = -int(digits) if negative else int(digits)
    if value is None:
        raise InvalidInput(f"{name} must be an integer in ASCII digits, got {_show(raw)}")
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be from {low} to {high}, got {value}")
    return value


def msat(raw: object, name: str, low: int = 0, high: int = MAX_MSAT) -> Msat:
    """An amount: integer msat, or ASCII digits ending in `msat` or `sat`, within bounds."""
    if isinstance(raw, str):
        m = _AMOUNT.fullmatch(raw)
        if m is None or len(m.group(1)) > 20:
            raise InvalidInput(f"{name} must be msat in ASCII digits (or '<n>sat'), got {_show(raw)}")
        value = int(m.group(1)) * (1000 if m.group(2) == "sat" else 1)
    else:
        value = integer(raw, name, 0, MAX_INTEGER)
    if not low <= value <= high:
        raise InvalidInput(f"{name} must be from {low} to {high} msat, got {value}")
    return Msat(value)


def boolean(raw: object, name: str, default: bool = False) -> bool:
    """`true` or `false`, as JSON or as text; absent gives `default`."""
    if absent(raw):
        return default
    if isinstance(raw, bool):
        return raw
    if raw in ("true", "false"):
        return raw == "true"
    raise InvalidInput(f"{name} must be true or false, got {_show(raw)}")


def federation_id(raw: object, name: str = "federation_id") -> FederationId:
    """64 hex characters, nothing around them."""
    if not isinstance(raw, str) or not _HEX64.fullmatch(raw):
        raise InvalidInput(f"{name} must be a federation id (64 hex characters), got {_show(raw)}")
    return FederationId(raw.lower())


def node_id(raw: object, name: str = "node_id") -> str:
    """A compressed public key in hex (66 characters, 02 or 03 first), lowercased."""
    if not isinstance(raw, str) or not _NODE_ID.fullmatch(raw):
        raise InvalidInput(
            f"{name} must be a node id (66 hex characters starting 02 or 03), got {_show(raw)}"
        )
    return raw.lower()


def fees(base_msat: object, ppm: object) -> FeeSchedule:
    """A fee schedule within the documented bounds (base ≤ 1,000,000 sat, ppm ≤ 1,000,000)."""
    return FeeSchedule(integer(base_msat, "base_msat", 0, MAX_BASE_FEE_MSAT), integer(ppm, "ppm", 0, MAX_PPM))


def url(raw: object, name: str = "url") -> str:
    """An http:// or https:// URL with a host (bracketed IPv6 hosts must be valid)."""
    problem = _url_problem(raw)
    if problem:
        raise InvalidInput(
            f"{name} must be an http:// or https:// URL with a host ({problem}), got {_show(raw)}"
        )
    return str(raw)


def _url_problem(raw: object) -> str:
    if not isinstance(raw, str) or not raw:
        return "not a string"
    if len(raw) > MAX_URL_LENGTH or not raw.isascii() or any(c.isspace() or ord(c) < 32 for c in raw):
        return "whitespace, control or non-ASCII characters, or too long"
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 (raises ValueError on a bad port)
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in ("http", "https"):
        return "scheme"
    host = parts.hostname
    if not host:
        return "no host"
    if parts.username is not None or parts.password is not None:
        return "credentials in the URL"
    if parts.netloc.rsplit("@", 1)[-1].startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "invalid IPv6 address"
    elif not re.fullmatch(r"[A-Za-z0-9.-]+", host, re.ASCII):
        return "invalid host name"
    return ""


def _show(raw: object) -> str:
    """A value as it may be quoted back in an error: repr, shortened."""
    text = repr(raw)
    return text if len(text) <= 80 else text[:77] + "..."
