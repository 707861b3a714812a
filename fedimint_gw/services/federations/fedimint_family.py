"""Joining a federation that speaks Fedimint's own protocol (invite codes `fed11…`).

The config is downloaded from the guardians the invite names, checked against the invite's
federation id (Fedimint's rule: the hash of the guardian list), then agreed by a threshold of
all guardians. The Lightning module picks the adapter: LNv1 (`ln`) here; an installed adapter
for another module (LNv2) registers its own pseudo-major and kind in `FEDIMINT_MODULE_MAJORS`'s
place. Fedimint families use adapter majors from 100 up (the registry keys adapters by a major).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from fedimint_gw.domain.ids import FederationId
from fedimint_gw.errors import FederationUnreachable, IncompatibleFederation, InvalidInput
from fedimint_gw.federation.adapter import AdapterFactory, FederationDescription
from fedimint_gw.federation.client import ApiVersion
from fedimint_gw.fedimint.config import ClientConfig, parse_client_config
from fedimint_gw.fedimint.endpoints import VERSION, bootstrap_client_config, fetch_client_config
from fedimint_gw.fedimint.errors import ConfigMismatch, DecodeError, FedimintProtocolError
from fedimint_gw.fedimint.invite import InviteCode, parse_invite_code
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transport import TransportSettings

FEDIMINT_MAJORS_FROM = 100
FEDIMINT_MODULE_MAJORS: tuple[tuple[str, int], ...] = (("ln", 101), ("lnv2", 102))
"""(module kind, adapter pseudo-major), most preferred first: LNv1 where a federation serves
both, since the official (v0.7-era) client only speaks LNv1."""


@dataclass(frozen=True)
class FedimintInvite:
    """A parsed `fed11…` invite code."""

    code: InviteCode

    @property
    def federation_id(self) -> FederationId:
        return self.code.federation_id


def parse_fedimint_invite(text: str) -> FedimintInvite | None:
    """The invite if `text` is a Fedimint invite code, else None (not an error: maybe devfed's)."""
    try:
        return FedimintInvite(parse_invite_code(text.strip()))
    except (FedimintProtocolError, ValueError):
        return None


def is_fedimint_major(major: int) -> bool:
    return major >= FEDIMINT_MAJORS_FROM


def _choose(
    config: ClientConfig, adapters: Mapping[int, AdapterFactory]
) -> tuple[dict[str, Any], FederationDescription, ApiVersion]:
    offered = sorted({m.kind for m in config.modules.values()})
    for kind, major in FEDIMINT_MODULE_MAJORS:
        factory = adapters.get(major)
        if factory is not None and config.module_by_kind(kind) is not None:
            raw = config.to_json()
            return raw, factory.describe(raw), ApiVersion(major, 0)
    raise IncompatibleFederation(
        f"the federation serves modules {offered}; the gateway needs a Lightning module it has an adapter "
        f"for ({', '.join(k for k, _ in FEDIMINT_MODULE_MAJORS)})"
    )


async def discover_fedimint(
    invite: FedimintInvite,
    session: aiohttp.ClientSession,
    adapters: Mapping[int, AdapterFactory],
    timeout: float,
) -> tuple[dict[str, Any], FederationDescription, ApiVersion]:
    """The checked config, its description and the adapter version to use."""
    settings = TransportSettings(call_timeout=timeout)
    try:
        config = await bootstrap_client_config(invite.code, session, settings)
    except (ConfigMismatch, DecodeError) as exc:
        raise InvalidInput(f"the federation's config does not match the invite code: {exc.message}") from None
    except FedimintProtocolError as exc:
        raise FederationUnreachable(f"cannot fetch the federation's config: {exc.message}") from None
    return _choose(config, adapters)


async def rediscover_fedimint(
    stored: Mapping[str, Any],
    federation_id: FederationId,
    session: aiohttp.ClientSession,
    adapters: Mapping[int, AdapterFactory],
    timeout: float,
) -> tuple[dict[str, Any], FederationDescription, ApiVersion]:
    """On reconnect: the config a threshold of the stored guardians serve, checked against the id."""
    try:
        known = parse_client_config(dict(stored))
    except FedimintProtocolError as exc:
        raise IncompatibleFederation(f"stored Fedimint config unreadable: {exc.message}") from None
    api = FederationApi.from_config(known, session, TransportSettings(call_timeout=timeout))
    try:
        config = await fetch_client_config(api, federation_id)
    except FedimintProtocolError as exc:
        raise FederationUnreachable(f"cannot fetch the federation's config: {exc.message}") from None
    finally:
        await api.close()
    return _choose(config, adapters)


async def probe_fedimint(
    stored: Mapping[str, Any], session: aiohttp.ClientSession, timeout: float
) -> tuple[int, int, int]:
    """(guardians, guardians answering `version` now, threshold) of a joined Fedimint federation,
    over its own WebSocket transport (devfed's HTTP `GET /version` does not reach it)."""
    config = parse_client_config(dict(stored))
    api = FederationApi.from_config(
        config, session, TransportSettings(call_timeout=timeout, connect_timeout=timeout)
    )
    try:
        answers = await api.each(VERSION)
    finally:
        await api.close()
    return config.num_peers, sum(1 for a in answers.values() if a.ok), config.threshold
