"""HTTP client of the peer protocol: signs requests, verifies answers, classifies failures.

The classification is what keeps forwards honest (docs/peer-protocol.md §5):
- `PeerUnreachable`: no connection was made, so nothing was delivered;
- `PeerRefused`: an error answer; it proves the receiver did not start what was asked only when
  `proves_not_started` says so (signed, below 500, a refusal decided after the nonce was accepted);
- `PeerOutcomeUnknown`: anything else (timeout, dropped connection, 5xx, bad or missing signature).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from fedimint_gw.peer.errors import PeerOutcomeUnknown, PeerRefused, PeerUnreachable
from fedimint_gw.peer.wire import H_SIG, PeerKey, response_text, sign_request, verify

MAX_ANSWER = 1024 * 1024


@dataclass(frozen=True)
class Link:
    """Where and who a peer is: its URL, node id and (after hello) its peer key."""

    url: str
    node_id: str
    peer_key: str | None


class PeerClient:
    """Sends signed peer messages as this gateway."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        key: PeerKey,
        node_id: str,
        now: Callable[[], int],
        timeout: float,
    ) -> None:
        self._session = session
        self._key = key
        self._node_id = node_id
        self._now = now
        self._timeout = timeout

    async def call(
        self, link: Link, message: str, body: dict[str, Any], timeout: float | None = None
    ) -> dict[str, Any]:
        """POST `body` to the peer's `/v1/peer/<message>`; the verified answer body.

        Without a known peer key (hello), the answer is verified with the key it carries; the
        caller then checks that key's binding to the node id.
        """
        path = f"/v1/peer/{message}"
        raw = json.dumps(body, sort_keys=True).encode()
        headers, nonce = sign_request(self._key, path, self._node_id, link.node_id, raw, self._now())
        headers["Content-Type"] = "application/json"
        url = link.url.rstrip("/") + path
        try:
            async with self._session.post(
                url, data=raw, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout or self._timeout)
            ) as resp:
                answer = await resp.content.read(MAX_ANSWER)
                status, sig = resp.status, resp.headers.get(H_SIG)
        except aiohttp.ClientConnectorError as exc:
            raise PeerUnreachable(f"peer {link.node_id[:16]} at {link.url} is unreachable: {exc}") from None
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise PeerOutcomeUnknown(f"no answer from peer {link.node_id[:16]}: {exc!r}") from None
        try:
            parsed = json.loads(answer)
        except (ValueError, RecursionError):  # not JSON, or nested too deep to parse
            parsed = None
        if not isinstance(parsed, dict):
            raise PeerOutcomeUnknown(f"peer {link.node_id[:16]} answered HTTP {status} without a JSON object")
        key = link.peer_key or parsed.get("peer_key")
        signed = (
            isinstance(key, str)
            and sig is not None
            and verify(key, response_text(path, link.node_id, nonce, status, answer), sig)
        )
        error = parsed.get("error")
        if status >= 400 and isinstance(error, dict):
            code = str(error.get("peer_code", "internal"))
            message_text = str(error.get("message", ""))
            if status in (401, 403) and not signed:
                # Auth refusals may come before the peer could know us; they cannot start anything.
                raise PeerRefused(f"peer refused ({code}): {message_text}", code, status, signed=False)
            if (signed and status < 500) or status == 503:
                raise PeerRefused(f"peer refused ({code}): {message_text}", code, status, signed=signed)
            raise PeerOutcomeUnknown(f"peer failed (HTTP {status}, {code}): {message_text}")
        if not signed:
            raise PeerOutcomeUnknown(f"peer {link.node_id[:16]}'s answer is not signed by its peer key")
        if status >= 400:
            raise PeerOutcomeUnknown(f"peer answered HTTP {status}")
        return parsed
