"""Block height: a persisted counter advanced over the admin API, or bitcoind's ``getblockcount``."""

from __future__ import annotations

import base64
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

import aiohttp

from contrib.devfed.errors import DevfedError, ErrorCode
from contrib.devfed.store import FederationStore

_HEIGHT_KEY = "block_height"


class HeightSource(Protocol):
    """Where the federation's idea of the block height comes from."""

    async def height(self) -> int:
        """The current block height."""
        ...


class CounterHeight:
    """A counter in the store (starts at 100); tests and the admin API advance it."""

    def __init__(self, store: FederationStore, start: int = 100) -> None:
        self._store = store
        if store.get_meta(_HEIGHT_KEY) is None:
            with store.atomic():
                store.set_meta(_HEIGHT_KEY, str(start))

    async def height(self) -> int:
        """The counter's value."""
        return int(self._store.get_meta(_HEIGHT_KEY) or "0")

    def advance(self, blocks: int) -> int:
        """Add ``blocks`` and return the new height."""
        with self._store.atomic():
            new = int(self._store.get_meta(_HEIGHT_KEY) or "0") + blocks
            self._store.set_meta(_HEIGHT_KEY, str(new))
        return new


class BitcoindHeight:
    """Follows bitcoind over JSON-RPC; the URL carries ``user:pass@``."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._url = urlunsplit((parts.scheme, f"{parts.hostname}:{parts.port}", parts.path or "/", "", ""))
        token = base64.b64encode(f"{parts.username or ''}:{parts.password or ''}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    async def height(self) -> int:
        """``getblockcount``; errors become ``internal``."""
        body = {"jsonrpc": "1.0", "id": "devfed", "method": "getblockcount", "params": []}
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.post(
                    self._url, json=body, headers=self._headers, timeout=aiohttp.ClientTimeout(total=10)
                ) as resp,
            ):
                data = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise DevfedError(ErrorCode.INTERNAL, f"bitcoind unreachable: {exc}") from None
        result = data.get("result") if isinstance(data, dict) else None
        if not isinstance(result, int):
            raise DevfedError(ErrorCode.INTERNAL, f"bitcoind answered {data!r}")
        return result
