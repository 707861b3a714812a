"""The official client (v0.7-era WASM build) against devfed's LNv1 module (`ln`, instance 0).

Here our own protocol code stands in for the gateway (funding the client's offer, paying its
outgoing contract); the real gateway in lightningd is tested in tests/regtest.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from coincurve import PrivateKey

from contrib.devfed.fedimint.faucet import faucet_notes
from contrib.devfed.fedimint.keys import MINT_INSTANCE_ID, FedimintParams
from contrib.devfed.fedimint.ln import LN_INSTANCE_ID
from contrib.devfed.fedimint.server import RunningFedimint, start_fedimint
from fedimint_gw.fedimint.encoding import encode
from fedimint_gw.fedimint.ln.contracts import DecryptedPreimage, IncomingContract, PreimageState
from fedimint_gw.fedimint.ln.items import ContractOutput, ln_output_bytes
from fedimint_gw.fedimint.mint_api import submit_transaction
from fedimint_gw.fedimint.mint_client import mint_input
from fedimint_gw.fedimint.mint_types import write_mint_input
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transaction import ModuleItem, Transaction
from fedimint_gw.lightning import bolt11
from tests.interop.official_client import OfficialClient

pytestmark = pytest.mark.asyncio(loop_scope="module")
GATEWAY_KEY = PrivateKey(bytes([7]) * 32)


def gateway_info() -> dict[str, Any]:
    key = GATEWAY_KEY.public_key.format().hex()
    return {
        "mint_channel_id": 12345,
        "gateway_redeem_key": key,
        "node_pub_key": key,
        "lightning_alias": "stand-in",
        "api": "http://127.0.0.1:9/",
        "route_hints": [],
        "fees": {"base_msat": 0, "proportional_millionths": 0},
        "gateway_id": key,
        "supports_private_payments": False,
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client() -> AsyncIterator[OfficialClient]:
    running = await OfficialClient.start()
    try:
        yield running
    finally:
        await running.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningFedimint]:
    running = await start_fedimint(
        tmp_path_factory.mktemp("fm-ln"), FedimintParams(name="interop-ln", ln=True)
    )
    yield running
    await running.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def joined(client: OfficialClient, fed: RunningFedimint, session: aiohttp.ClientSession) -> str:
    await client.join("ln", fed.invite_code, timeout=30)
    api = FederationApi.from_config(fed.federation.client_config, session)
    try:
        announcement = {"info": gateway_info(), "vetted": False, "ttl": {"secs": 600, "nanos": 0}}
        await api.module_threshold_request(LN_INSTANCE_ID, "register_gateway", announcement)
    finally:
        await api.close()
    await client.rpc("ln", "update_gateway_cache", client_name="ln")
    return "ln"


async def test_the_client_lists_the_gateway_registered_with_devfed(
    client: OfficialClient, joined: str
) -> None:
    [listed] = await client.rpc_one("ln", "list_gateways", client_name=joined)
    assert listed["info"] == gateway_info()
    assert 0 < listed["ttl"]["secs"] <= 600


async def test_the_client_receives_once_a_gateway_funds_its_offer(
    client: OfficialClient, fed: RunningFedimint, session: aiohttp.ClientSession, joined: str
) -> None:
    before = await client.rpc_one("", "get_balance", {}, client_name=joined)
    created = await client.rpc_one(
        "ln",
        "create_bolt11_invoice",
        {
            "amount": 5000,
            "description": "devfed ln",
            "expiry_time": None,
            "extra_meta": {},
            "gateway": gateway_info(),
        },
        client_name=joined,
    )
    invoice = bolt11.decode(created["invoice"])
    ln = fed.federation.ln
    assert ln is not None

    async def offered() -> None:
        while ln.store.offer(invoice.payment_hash) is None:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(offered(), 30)
    offer = ln.store.offer(invoice.payment_hash)
    assert offer is not None and offer.amount == 5000  # the client's ciphertext verified in devfed

    # stand-in gateway: fund the incoming contract with notes; the guardians decrypt the preimage
    notes = await faucet_notes(session, fed.admin_url, fed.federation.client_config, 5000)
    contract = IncomingContract(
        offer.hash,
        offer.encrypted_preimage,
        DecryptedPreimage(PreimageState.PENDING),
        GATEWAY_KEY.public_key.format(),
    )
    items = [
        ModuleItem(MINT_INSTANCE_ID, encode(lambda w, n=n: write_mint_input(w, mint_input(n.amount, n.note))))
        for n in notes.notes
    ]
    tx = Transaction.signed(
        items,
        [ModuleItem(LN_INSTANCE_ID, ln_output_bytes(ContractOutput(5000, contract)))],
        secrets.token_bytes(8),
        [n.note.spend_key for n in notes.notes],
    )
    api = FederationApi.from_config(fed.federation.client_config, session)
    try:
        assert (await submit_transaction(api, tx)).accepted
    finally:
        await api.close()
    account = ln.store.account(offer.hash)
    assert account is not None
    assert account.to_json()["contract"]["Incoming"]["contract"]["decrypted_preimage"] != "Invalid"  # type: ignore[index]

    states = []
    for state in await client.rpc(
        "ln",
        "subscribe_ln_receive",
        {"operation_id": created["operation_id"]},
        client_name=joined,
        timeout=60,
    ):
        states.append(state)
        if state == "claimed" or (isinstance(state, dict) and "canceled" in state):
            break
    assert states[-1] == "claimed", (states, client.trace_tail(60), fed.federation.unserved)
    assert await client.rpc_one("", "get_balance", {}, client_name=joined) == before + 5000
