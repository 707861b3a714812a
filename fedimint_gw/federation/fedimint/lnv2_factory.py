"""The adapter factory for Fedimint federations served over LNv2 (pseudo-major 102).

Fedimint families use adapter majors from 100 up (the registry keys adapters by a major): LNv1
is 101 (`fedimint-lnv1`), LNv2 102. The Fedimint connect path picks the adapter by the Lightning
module the federation's config carries (kind `lnv2` here) and hands it the checked client config
JSON; `create` builds the whole stack for one federation: guardian connections, the gateway's
mint notes (the same tables and root as LNv1's, so a federation's notes are one wallet), the mint
client, the LNv2 side and the `FederationClient`.
"""

from __future__ import annotations

import hashlib

from fedimint_gw.domain.ids import FederationId
from fedimint_gw.errors import InvalidInput
from fedimint_gw.federation.adapter import AdapterContext
from fedimint_gw.federation.fedimint.factory_base import FedimintFactoryBase
from fedimint_gw.federation.fedimint.lnv2 import Lnv2Gateway
from fedimint_gw.federation.fedimint.lnv2_client import Lnv2FederationClient
from fedimint_gw.federation.fedimint.mint import MintClient
from fedimint_gw.federation.fedimint.notes import FedimintNotes
from fedimint_gw.fedimint.config import ClientConfig, ConsensusVersion, parse_client_config
from fedimint_gw.fedimint.lnv2.config import LNV2_KIND, Lnv2ClientConfig
from fedimint_gw.fedimint.mint_types import MINT_KIND, MintClientConfig
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transport import TransportSettings

FEDIMINT_LNV2_MAJOR = 102
OVERPAY_FROM = ConsensusVersion(2, 1)
"""From core consensus 2.1 a transaction may leave dust to the federation."""


def notes_root(gateway_secret: bytes) -> bytes:
    """The root of the gateway's note secrets in a federation (shared with the LNv1 adapter)."""
    return hashlib.sha256(b"fedimint-gw/fedimint-notes" + gateway_secret).digest()


def build_client(ctx: AdapterContext, config: ClientConfig) -> Lnv2FederationClient:
    """Everything the LNv2 client needs, from the adapter context and the checked config."""
    lnv2 = config.module_by_kind(LNV2_KIND)
    mint = config.module_by_kind(MINT_KIND)
    if lnv2 is None or mint is None:
        raise InvalidInput("the federation serves no LNv2 (lnv2) and mint modules")
    fid = FederationId(ctx.federation_id)
    if config.federation_id() != fid:
        raise InvalidInput(f"the config does not hash to federation {fid.hex}: another federation's config")
    api = FederationApi.from_config(config, ctx.session, TransportSettings(call_timeout=ctx.request_timeout))
    notes = FedimintNotes(
        ctx.wallet.db,
        fid,
        mint.instance_id,
        MintClientConfig.from_bytes(mint.raw),
        notes_root(ctx.gateway_secret),
        ctx.clock,
        overpay=config.consensus_version >= OVERPAY_FROM,
    )
    peers = tuple((p, u.url) for p, u in sorted(config.api_endpoints.items()))
    mint_client = MintClient(notes, api, peers)
    gateway = Lnv2Gateway(
        notes,
        mint_client,
        api,
        lnv2.instance_id,
        Lnv2ClientConfig.from_bytes(lnv2.raw),
        ctx.gateway_secret,
        ctx.clock,
    )
    name = config.federation_name or ""
    return Lnv2FederationClient(fid, name, api, notes, mint_client, gateway, ctx.clock, ctx.api_version)


class FedimintLnv2Factory(FedimintFactoryBase):
    """The adapter factory: Fedimint's protocol, LNv2 module."""

    major = FEDIMINT_LNV2_MAJOR
    name = "fedimint-lnv2"

    def create(self, ctx: AdapterContext) -> Lnv2FederationClient:
        return build_client(ctx, parse_client_config(dict(ctx.config)))


FACTORY = FedimintLnv2Factory()
