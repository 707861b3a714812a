"""Signed messages of the peer protocol (docs/peer-protocol.md §1-§3): texts, keys, headers, nonces."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from coincurve import PrivateKey, PublicKey

from fedimint_gw.peer.errors import PeerAuthFailed

PREFIX = "fedimint-gw-peer/1"
VERSION_MIN = 1
VERSION_MAX = 2
FORWARD_VERSION = 2  # forwards carry a deadline from this version on; older links do not forward
TIME_WINDOW = 120  # seconds a request's time may differ from ours
NONCE_TTL = 2 * TIME_WINDOW  # a nonce is remembered as long as a request carrying it could be fresh
PEER_KEY_LABEL = "fedimint-gw peer key"

H_NODE = "Fedimint-Peer-Node"
H_TIME = "Fedimint-Peer-Time"
H_NONCE = "Fedimint-Peer-Nonce"
H_SIG = "Fedimint-Peer-Sig"

_HEX66 = re.compile(r"^(02|03)[0-9a-f]{64}\Z")
_NONCE = re.compile(r"^[0-9a-f]{32}\Z")
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")


def canonical(value: Any) -> bytes:
    """Canonical JSON bytes (sorted keys, no spaces, ASCII)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def body_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def is_node_id(value: object) -> bool:
    """Whether `value` is a 33-byte compressed point in lowercase hex."""
    return isinstance(value, str) and bool(_HEX66.match(value))


def is_protocol_id(value: object) -> bool:
    """Whether `value` is a valid forward or settlement id."""
    return isinstance(value, str) and bool(_ID.match(value))


def binding_text(peer_key: str, node_id: str) -> str:
    """What the node signs with `signmessage` to vouch for its peer key."""
    return f"{PREFIX} key {peer_key} node {node_id}"


def request_text(path: str, sender: str, receiver: str, timestamp: int, nonce: str, raw: bytes) -> str:
    return "\n".join([f"{PREFIX} request", path, sender, receiver, str(timestamp), nonce, body_hash(raw)])


def response_text(path: str, responder: str, nonce: str, status: int, raw: bytes) -> str:
    return "\n".join([f"{PREFIX} response", path, responder, nonce, str(status), body_hash(raw)])


def statement_text(statement: Mapping[str, Any]) -> str:
    unsigned = {k: v for k, v in statement.items() if k != "sig"}
    return f"{PREFIX} statement\n" + canonical(unsigned).decode()


class PeerKey:
    """The gateway's peer key pair. The secret never leaves this object (and is never logged)."""

    def __init__(self, secret: bytes) -> None:
        self._key = PrivateKey(hashlib.sha256(b"fedimint-gw peer key\x00" + secret).digest())
        self.public_hex = self._key.public_key.format().hex()

    def sign(self, text: str) -> str:
        """DER ECDSA signature, hex, over sha256(text)."""
        return self._key.sign(text.encode()).hex()

    def __repr__(self) -> str:
        return f"PeerKey({self.public_hex})"


def verify(public_hex: str, text: str, sig_hex: str) -> bool:
    """Whether `sig_hex` is `public_hex`'s signature of `text` (low-S DER only)."""
    try:
        return bool(PublicKey(bytes.fromhex(public_hex)).verify(bytes.fromhex(sig_hex), text.encode()))
    except (ValueError, TypeError):
        return False


@dataclass(frozen=True)
class PeerAnswer:
    """An HTTP answer to a peer: status, the exact body bytes, and headers (with its signature)."""

    status: int
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class RequestAuth:
    """The authentication headers of one request, parsed but not yet verified."""

    node_id: str
    timestamp: int
    nonce: str
    signature: str

    def text(self, path: str, receiver: str, raw: bytes) -> str:
        return request_text(path, self.node_id, receiver, self.timestamp, self.nonce, raw)


def sign_request(
    key: PeerKey, path: str, sender: str, receiver: str, raw: bytes, now: int
) -> tuple[dict[str, str], str]:
    """Headers for a request (and its nonce, to check the answer against)."""
    nonce = secrets.token_hex(16)
    sig = key.sign(request_text(path, sender, receiver, now, nonce, raw))
    return {H_NODE: sender, H_TIME: str(now), H_NONCE: nonce, H_SIG: sig}, nonce


def parse_auth(headers: Mapping[str, str]) -> RequestAuth:
    """The auth headers, or PeerAuthFailed(unauthenticated) if one is missing or malformed."""
    node, ts, nonce, sig = (headers.get(h) for h in (H_NODE, H_TIME, H_NONCE, H_SIG))
    if node is None or ts is None or nonce is None or sig is None:
        raise PeerAuthFailed("the request is not signed (missing Fedimint-Peer-* headers)")
    if not is_node_id(node) or not ts.isdigit() or not _NONCE.match(nonce):
        raise PeerAuthFailed("malformed Fedimint-Peer-* headers")
    try:
        bytes.fromhex(sig)
    except ValueError:
        raise PeerAuthFailed("malformed signature", "bad_signature") from None
    return RequestAuth(node, int(ts), nonce, sig)


def check_fresh(auth: RequestAuth, now: int) -> None:
    """Refuse a request whose time is outside the window."""
    if abs(now - auth.timestamp) > TIME_WINDOW:
        raise PeerAuthFailed(
            f"request time {auth.timestamp} is more than {TIME_WINDOW} s from ours ({now})", "stale"
        )


def negotiate(versions: object) -> int:
    """The highest version in both ranges, or 0 when there is none (or the range is malformed)."""
    if not isinstance(versions, dict):
        return 0
    low, high = versions.get("min"), versions.get("max")
    if not isinstance(low, int) or not isinstance(high, int) or isinstance(low, bool):
        return 0
    best = min(high, VERSION_MAX)
    return best if best >= max(low, VERSION_MIN) else 0
