"""`POST /v1/federation_status`: gatewayd's public, federation-scoped status, revealing only
what gatewayd reveals.

The caller names one federation (`{"federation_id"}`) and learns whether this gateway serves
it, an aggregate connectivity (connected, degraded: fewer guardians than the threshold answer,
disconnected) and, per Lightning module generation, whether it is supported and how the
gateway is found (LNv1: the gateway registers itself with a TTL; LNv2: the federation lists
its gateways). Nothing else: no balance, no guardian list, no URLs, no error text, no other
federation. Connectivity comes from the watcher's last round (no probe per request, so the
endpoint cannot be used to make the gateway flood guardians).

Mapping of this gateway's adapters: self-registration (devfed v1) is reported as `lnv1`,
gateway invoices (devfed v2) as `lnv2`; `consensus_version` is the negotiated API version of
the adapter (devfed federations have no module consensus versions of their own).
"""

from __future__ import annotations

from typing import Any

from fedimint_gw.clock import Clock
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.errors import InvalidInput
from fedimint_gw.federation.client import Feature, RegistrationResult, RegistrationStatus
from fedimint_gw.services.federations.links import REGISTRATION_TTL
from fedimint_gw.services.federations.manager import FederationManager
from fedimint_gw.services.ops.watch import Watcher
from fedimint_gw.store import federations as fed_repo
from fedimint_gw.store.db import Database

ABSENT: dict[str, Any] = {"module_status": "absent"}


class FederationStatusService:
    """Answers the public federation status endpoint."""

    def __init__(self, db: Database, federations: FederationManager, watcher: Watcher, clock: Clock) -> None:
        self._db = db
        self._feds = federations
        self._watcher = watcher
        self._clock = clock

    async def federation_status(self, body: dict[str, Any]) -> dict[str, Any]:
        """The status of the one federation named in `body`."""
        try:
            fid = FederationId.parse(body.get("federation_id"))
        except ValueError:
            raise InvalidInput("federation_id must be a federation id (64 hex characters)") from None
        rec = await fed_repo.get(self._db.conn, fid)
        if rec is None or rec.state is not fed_repo.FederationState.ACTIVE:
            return {"federation_id": fid.hex, "federation_status": "unserved"}
        live = self._feds.live_view(fid)
        version = {"major": rec.api_major, "minor": rec.api_minor}
        lnv1, lnv2 = dict(ABSENT), dict(ABSENT)
        if live is not None:
            features, registration = live
            if Feature.SELF_REGISTRATION in features:
                lnv1 = {
                    "module_status": "supported",
                    "consensus_version": version,
                    "registration": {
                        "mode": "gateway_managed",
                        "configured": True,
                        "endpoints": {"http": self._endpoint(registration)},
                    },
                }
            if Feature.INVOICE_BY_GATEWAY in features:
                lnv2 = {
                    "module_status": "supported",
                    "consensus_version": version,
                    "registration": {"mode": "federation_managed"},
                }
        return {
            "federation_id": fid.hex,
            "federation_status": "served",
            "connectivity": self._connectivity(fid, live is not None),
            "lnv1": lnv1,
            "lnv2": lnv2,
        }

    def _connectivity(self, fid: FederationId, connected: bool) -> str:
        seen = self._watcher.last_probe(fid.hex)
        if seen is None:
            return "connected" if connected else "disconnected"
        if seen.answering == 0:
            return "disconnected"
        return "connected" if seen.reachable else "degraded"

    def _endpoint(self, reg: RegistrationResult | None) -> dict[str, Any]:
        if reg is None:
            return {"last_attempt": None, "advertised_ttl_remaining_secs": None}
        if reg.status is RegistrationStatus.REGISTERED and reg.expires_at is not None:
            return {
                "last_attempt": {
                    "completed_at_unix_secs": max(0, reg.expires_at - REGISTRATION_TTL),
                    "result": "succeeded",
                },
                "advertised_ttl_remaining_secs": max(0, reg.expires_at - self._clock.now()),
            }
        return {"last_attempt": None, "advertised_ttl_remaining_secs": None}
