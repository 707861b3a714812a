"""The official client (v0.7-era WASM build) against devfed's LNv1 module (`ln`, instance 0).

Here our own protocol code stands in for the gateway (funding the client's offer, paying its
outgoing contract); the real gateway in lightningd is tested in tests/regtest.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from coincurve import PrivateKey

from contrib.devfed.fedimint.faucet import faucet_notes, fresh_secrets
from contrib.devfed.fedimint.keys import DEFAULT_TIERS, MINT_INSTANCE_ID, FedimintParams
from contrib.devfed.fedimint.ln import LN_INSTANCE_ID
from contrib.devfed.fedimint.server import RunningFedimint, start_fedimint
from contrib.official_client.driver import OfficialClient
from fedimint_gw.fedimint.encoding import encode
from fedimint_gw.fedimint.ln.contracts import (
    DecryptedPreimage,
    IncomingContract,
    OutgoingContract,
    PreimageState,
)
from fedimint_gw.fedimint.ln.items import (
    CancelOutgoing,
    ContractOutput,
    LightningInputV0,
    ln_input_bytes,
    ln_output_bytes,
)
from fedimint_gw.fedimint.mint_api import submit_transaction
from fedimint_gw.fedimint.mint_client import mint_input, represent_amount
from fedimint_gw.fedimint.mint_types import write_mint_input, write_mint_output
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transaction import ModuleItem, Transaction
from fedimint_gw.lightning import bolt11
from tests.interop.test_official_client_ln import our_invoice

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


class StandInGateway:
    """A gateway's HTTP API at the root: `GET /id`; `POST /pay_invoice` claims the outgoing
    contract with `preimage` (or, with `preimage=None`, cancels it and answers 500)."""

    def __init__(self, fed: RunningFedimint, session: aiohttp.ClientSession, preimage: bytes | None) -> None:
        self.fed, self.session, self.preimage = fed, session, preimage
        self.bodies: list[Any] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> StandInGateway:
        app = web.Application()
        app.router.add_get("/id", self._id)
        app.router.add_post("/pay_invoice", self._pay)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _id(self, _request: web.Request) -> web.Response:
        return web.json_response(GATEWAY_KEY.public_key.format().hex())

    async def _pay(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(body)
        contract_id = bytes.fromhex(body["contract_id"])
        ln = self.fed.federation.ln
        assert ln is not None
        account = ln.store.account(contract_id)
        assert account is not None and isinstance(account.contract, OutgoingContract)
        api = FederationApi.from_config(self.fed.federation.client_config, self.session)
        try:
            if self.preimage is None:
                signature = GATEWAY_KEY.sign_schnorr(account.contract.cancellation_message())
                cancel = CancelOutgoing(contract_id, signature)
                tx = Transaction.signed(
                    [], [ModuleItem(LN_INSTANCE_ID, ln_output_bytes(cancel))], secrets.token_bytes(8), []
                )
                assert (await submit_transaction(api, tx)).accepted
                return web.Response(status=500, text="payment failed")
            claim = LightningInputV0(contract_id, account.amount, self.preimage)
            tx = Transaction.signed(
                [ModuleItem(LN_INSTANCE_ID, ln_input_bytes(claim))],
                note_outputs(account.amount),
                secrets.token_bytes(8),
                [GATEWAY_KEY.secret],
            )
            assert (await submit_transaction(api, tx)).accepted
        finally:
            await api.close()
        return web.json_response(self.preimage.hex())


def note_outputs(amount: int) -> list[ModuleItem]:
    outs = [fresh_secrets(a) for a in represent_amount(amount, DEFAULT_TIERS)]
    return [
        ModuleItem(MINT_INSTANCE_ID, encode(lambda w, o=o: write_mint_output(w, o.output()))) for o in outs
    ]


async def fund_client(
    client: OfficialClient, fed: RunningFedimint, session: aiohttp.ClientSession, name: str
) -> None:
    got = await faucet_notes(session, fed.admin_url, fed.federation.client_config, 4096)
    op = await client.rpc_one(
        "mint",
        "reissue_external_notes",
        {"oob_notes": got.oob.encode(), "extra_meta": None},
        client_name=name,
    )
    for state in await client.rpc(
        "mint", "subscribe_reissue_external_notes", {"operation_id": op}, client_name=name, timeout=60
    ):
        if state == "Done":
            return
    raise AssertionError("the reissue did not finish")


async def pay_states(
    client: OfficialClient, name: str, info: dict[str, Any], invoice: str
) -> tuple[Any, list[Any]]:
    paid = await client.rpc_one(
        "ln",
        "pay_bolt11_invoice",
        {"maybe_gateway": info, "invoice": invoice, "extra_meta": {}},
        client_name=name,
    )
    states = []
    for state in await client.rpc(
        "ln",
        "subscribe_ln_pay",
        {"operation_id": paid["payment_type"]["lightning"]},
        client_name=name,
        timeout=60,
    ):
        states.append(state)
        if isinstance(state, dict) and ({"success", "refunded", "failed"} & set(state)):
            break
    return paid, states


@pytest.mark.parametrize("outcome", ["paid", "refunded"])
async def test_the_client_pays_through_a_gateway_or_is_refunded_when_it_cancels(
    client: OfficialClient, fed: RunningFedimint, session: aiohttp.ClientSession, outcome: str
) -> None:
    name = f"pay-{outcome}"
    await client.join(name, fed.invite_code, timeout=30)
    await fund_client(client, fed, session, name)
    before = await client.rpc_one("", "get_balance", {}, client_name=name)
    preimage = secrets.token_bytes(32)
    gateway = await StandInGateway(fed, session, preimage if outcome == "paid" else None).start()
    try:
        info = {**gateway_info(), "api": gateway.url}
        invoice = our_invoice(hashlib.sha256(preimage).digest(), 1000)
        paid, states = await pay_states(client, name, info, invoice)
        after = await client.rpc_one("", "get_balance", {}, client_name=name)
        if outcome == "paid":
            assert states[-1] == {"success": {"preimage": preimage.hex()}}, (states, fed.federation.unserved)
            assert before - after == 1000 and paid["fee"] == 0
        else:
            assert "refunded" in states[-1], (states, client.trace_tail(30))
            assert after == before
        [body] = gateway.bodies
        assert body["contract_id"] == paid["contract_id"]
    finally:
        await gateway.stop()
