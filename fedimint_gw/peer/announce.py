"""A peer's announcement (docs/peer-protocol.md §4), parsed at the boundary: types, lengths, values.

A hello carries an announcement: the peer's federations and the peers it routes to. It comes
from another operator's gateway, so it is parsed strictly before anything is stored: a malformed
one (a number where a list belongs, an overlong list, a bad id) refuses the hello and changes
nothing. What is stored is the parsed form only; reading it back (`stored`) is lenient, so a
record written by an older version can never break a send.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fedimint_gw.errors import InvalidInput
from fedimint_gw.peer.wire import is_node_id

MAX_FEDERATIONS = 64
MAX_ROUTES = 256
MAX_SCIDS = 64  # per route
MAX_API_VERSION = 1000
_SCID = re.compile(r"^[0-9]{1,8}x[0-9]{1,8}x[0-9]{1,5}\Z")  # 24, 24 and 16 bits
_FEDERATION_ID = re.compile(r"^[0-9a-f]{64}\Z")
_API_VERSION = re.compile(r"^[0-9]{1,4}(\.[0-9]{1,4})?\Z")


@dataclass(frozen=True)
class AnnouncedFederation:
    """One of the peer's own federations, and the fake scid its invoices use."""

    federation_id: str
    scid: str
    api_version: str  # "major.minor"


@dataclass(frozen=True)
class AnnouncedRoute:
    """A gateway the peer routes to, and the scids of that gateway's federations."""

    node_id: str
    scids: tuple[str, ...]


@dataclass(frozen=True)
class Announcement:
    """A parsed announcement."""

    federations: tuple[AnnouncedFederation, ...] = ()
    routes: tuple[AnnouncedRoute, ...] = ()
    expires_at: int = 0

    @property
    def scids(self) -> frozenset[str]:
        return frozenset(f.scid for f in self.federations)

    def to_json(self) -> dict[str, Any]:
        return {
            "federations": [
                {"federation_id": f.federation_id, "scid": f.scid, "api_version": f.api_version}
                for f in self.federations
            ],
            "routes": [{"node_id": r.node_id, "scids": list(r.scids)} for r in self.routes],
            "expires_at": self.expires_at,
        }


def parse(raw: object) -> Announcement:
    """A peer's announcement, or InvalidInput naming what is wrong. A missing one is empty."""
    if raw is None:
        return Announcement()
    if not isinstance(raw, dict):
        raise InvalidInput("the announcement must be a JSON object")
    feds = tuple(_federation(f) for f in _list(raw.get("federations"), "federations", MAX_FEDERATIONS))
    routes = tuple(_route(r) for r in _list(raw.get("routes"), "routes", MAX_ROUTES))
    expires_at = raw.get("expires_at", 0)
    expiry = _small_int(expires_at, 2**40)
    if expiry is None:
        raise InvalidInput("announcement expires_at must be a unix time")
    return Announcement(feds, routes, expiry)


def stored(raw: object) -> Announcement:
    """An announcement read back from the store; anything malformed reads as empty."""
    try:
        return parse(raw)
    except InvalidInput:
        return Announcement()


def _list(raw: object, name: str, limit: int) -> list[object]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidInput(f"announcement {name} must be a list")
    if len(raw) > limit:
        raise InvalidInput(f"announcement {name} has {len(raw)} items; at most {limit}")
    return raw


def _federation(raw: object) -> AnnouncedFederation:
    if not isinstance(raw, dict):
        raise InvalidInput("each announced federation must be an object")
    fid, scid, version = raw.get("federation_id"), raw.get("scid"), raw.get("api_version")
    if not isinstance(fid, str) or not _FEDERATION_ID.match(fid):
        raise InvalidInput("an announced federation_id must be 64 lowercase hex characters")
    if not isinstance(scid, str) or not _SCID.match(scid):
        raise InvalidInput("an announced scid must look like 0x1x0")
    if isinstance(version, int) and _small_int(version, MAX_API_VERSION) is not None:
        version = str(version)
    if not isinstance(version, str) or not _API_VERSION.match(version):
        raise InvalidInput("an announced api_version must be a version like 2.0")
    return AnnouncedFederation(fid, scid, version)


def _route(raw: object) -> AnnouncedRoute:
    if not isinstance(raw, dict):
        raise InvalidInput("each announced route must be an object")
    node = raw.get("node_id")
    if not is_node_id(node) or not isinstance(node, str):
        raise InvalidInput("an announced route's node_id must be a node id")
    scids = _list(raw.get("scids"), "route scids", MAX_SCIDS)
    if not all(isinstance(s, str) and _SCID.match(s) for s in scids):
        raise InvalidInput("an announced route's scids must look like 0x1x0")
    return AnnouncedRoute(node, tuple(str(s) for s in scids))


def _small_int(value: object, limit: int) -> int | None:
    """`value` if it is an integer (not a bool) from 0 to `limit`, else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= limit:
        return value
    return None
