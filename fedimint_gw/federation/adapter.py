"""The adapter seam: what the gateway gives an adapter, and what an adapter factory offers.

Every protocol family (`devfed/`, later `fedimint/`) and every third-party adapter package
implements `AdapterFactory`; the registry (`registry.py`) discovers and negotiates with them
without importing any of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from fedimint_gw.clock import Clock
from fedimint_gw.federation.client import ApiVersion, FederationClient


@dataclass(frozen=True)
class AdapterContext:
    """What an adapter gets from the gateway: nothing else, no globals."""

    federation_id: str
    config: Mapping[str, Any]
    guardian_urls: tuple[str, ...]
    api_version: ApiVersion
    session: aiohttp.ClientSession
    clock: Clock
    wallet: Any  # fedimint_gw.federation.notes.NoteWallet: the gateway's notes in this federation
    gateway_secret: bytes  # 32 bytes: the gateway's key in this federation (from the node's HSM)
    request_timeout: float


@dataclass(frozen=True)
class FederationDescription:
    """What the gateway needs from a federation's public config before choosing a version."""

    name: str
    threshold: int
    guardian_urls: tuple[str, ...]


class AdapterFactory(Protocol):
    """An installable adapter for one federation API major version."""

    @property
    def major(self) -> int:
        """The federation API major version this adapter speaks."""
        ...

    @property
    def min_minor(self) -> int:
        """The lowest minor of that major the adapter can work with."""
        ...

    @property
    def name(self) -> str:
        """A short name shown to operators."""
        ...

    async def fetch_config(self, session: aiohttp.ClientSession, url: str, timeout: float) -> dict[str, Any]:
        """Download the public config from one guardian, in this version's dialect."""
        ...

    def describe(self, config: Mapping[str, Any]) -> FederationDescription:
        """Read name, threshold and guardian URLs from a config (raise ValueError if malformed)."""
        ...

    def create(self, ctx: AdapterContext) -> FederationClient:
        """Build a client for one federation."""
        ...
