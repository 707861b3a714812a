"""Attach an LNv2 Fedimint federation to a running gateway, as the federation links would after
`fedimint-connect fed11…`: a federation record and a live client built by the adapter factory.

The Fedimint connect path is not on this branch (it comes with the LNv1 work); until it is, e2e
tests of LNv2 through the gateway's services use this.
"""

from __future__ import annotations

import time

import aiohttp

from contrib.devfed.fedimint.server import RunningFedimint
from fedimint_gw.clock import SystemClock
from fedimint_gw.domain.amount import FeeSchedule
from fedimint_gw.domain.ids import ShortChannelId
from fedimint_gw.federation.adapter import AdapterContext
from fedimint_gw.federation.client import ApiVersion
from fedimint_gw.federation.fedimint.lnv2_client import Lnv2FederationClient
from fedimint_gw.federation.fedimint.lnv2_factory import FACTORY, FEDIMINT_LNV2_MAJOR
from fedimint_gw.federation.notes import NoteWallet
from fedimint_gw.services.federations.links import ConnectionStatus, LiveFederation
from fedimint_gw.services.gateway import Gateway
from fedimint_gw.store import federations as fed_repo
from tests.support.fake_node import FakeNode


async def attach_lnv2(
    gateway: Gateway, node: FakeNode, session: aiohttp.ClientSession, fm: RunningFedimint, fees: FeeSchedule
) -> Lnv2FederationClient:
    config = fm.federation.client_config
    ctx = AdapterContext(
        federation_id=fm.federation_id.hex,
        config=config.to_json(),
        guardian_urls=fm.guardian_urls,
        api_version=ApiVersion(FEDIMINT_LNV2_MAJOR, 0),
        session=session,
        clock=SystemClock(),
        wallet=NoteWallet(gateway.db, fm.federation_id.hex, SystemClock()),
        gateway_secret=await node.make_secret(f"fedimint-gw/federation/{fm.federation_id.hex}"),
        request_timeout=5.0,
    )
    client = FACTORY.create(ctx)
    now = int(time.time())
    async with gateway.db.transaction() as conn:
        scid = ShortChannelId.from_int(await fed_repo.next_scid_index(conn))
        await fed_repo.insert(
            conn,
            fed_repo.FederationRecord(
                federation_id=fm.federation_id,
                name=config.federation_name or "",
                invite_code=fm.invite_code,
                api_major=FEDIMINT_LNV2_MAJOR,
                api_minor=0,
                scid=scid,
                fees=fees,
                config=config.to_json(),
                state=fed_repo.FederationState.ACTIVE,
                created_at=now,
                updated_at=now,
            ),
        )
    gateway.federations._live[fm.federation_id] = LiveFederation(
        ConnectionStatus.CONNECTED, client=client, adapter=FACTORY.name
    )
    return client
