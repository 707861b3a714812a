"""What every adapter factory of Fedimint's family shares: reading a guardian's config and
describing it. The factories (LNv1, LNv2) differ only in their major, name and client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp

from fedimint_gw.errors import GatewayError
from fedimint_gw.federation.adapter import FederationDescription
from fedimint_gw.fedimint.config import parse_client_config
from fedimint_gw.fedimint.errors import FedimintProtocolError
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transport import TransportSettings


class FedimintFactoryBase:
    """`fetch_config` and `describe` of the `AdapterFactory` Protocol, for Fedimint's protocol."""

    min_minor = 0

    async def fetch_config(self, session: aiohttp.ClientSession, url: str, timeout: float) -> dict[str, Any]:
        """One guardian's `client_config` (the connect path checks it against the invite)."""
        api = FederationApi({0: url}, session, TransportSettings(call_timeout=timeout))
        try:
            answer = await api.request_peer(0, "client_config")
        except FedimintProtocolError as exc:
            raise ValueError(exc.message) from None
        finally:
            await api.close()
        if not isinstance(answer, dict):
            raise ValueError("client_config is not an object")
        return answer

    def describe(self, config: Mapping[str, Any]) -> FederationDescription:
        """Name, threshold and guardian URLs of a Fedimint client config (ValueError if malformed)."""
        try:
            parsed = parse_client_config(dict(config))
        except GatewayError as exc:
            raise ValueError(exc.message) from None
        urls = tuple(p.url for _, p in sorted(parsed.api_endpoints.items()))
        return FederationDescription(parsed.federation_name or "", parsed.threshold, urls)
