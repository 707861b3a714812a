"""The LNv2 `FederationClient` (federation/fedimint/lnv2_client.py) against devfed's lnv2 module,
called the way the gateway's receive and send services call an adapter (accept → fund → await
preimage; verify → auth → claim or cancel), with our own LNv2 user wallet on the other side.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from contrib.devfed.fedimint.faucet import faucet_notes
from contrib.devfed.fedimint.keys import LNV2_INSTANCE_ID, MINT_INSTANCE_ID, FedimintParams
from contrib.devfed.fedimint.mint import FaultMode
from contrib.devfed.fedimint.server import RunningFedimint, start_fedimint
from fedimint_gw.clock import SystemClock
from fedimint_gw.domain.amount import FeeSchedule, Msat
from fedimint_gw.domain.ids import ShortChannelId
from fedimint_gw.errors import FederationUnreachable, InsufficientFunds, InvalidInput, NotFound
from fedimint_gw.federation.adapter import AdapterContext
from fedimint_gw.federation.client import (
    ApiVersion,
    GatewayRegistration,
    IncomingState,
    OutgoingState,
    RegistrationStatus,
)
from fedimint_gw.federation.fedimint.lnv2 import FUND, Lnv2Gateway
from fedimint_gw.federation.fedimint.lnv2_client import (
    Lnv2FederationClient,
    as_federation_client,
    outgoing_handle,
)
from fedimint_gw.federation.fedimint.lnv2_factory import FACTORY, FEDIMINT_LNV2_MAJOR
from fedimint_gw.federation.fedimint.mint import MintClient
from fedimint_gw.federation.fedimint.notes import FedimintNotes
from fedimint_gw.federation.notes import NoteWallet
from fedimint_gw.fedimint.lnv2 import items
from fedimint_gw.fedimint.lnv2.config import Lnv2ClientConfig
from fedimint_gw.fedimint.lnv2.keys import public_key_of, sign_schnorr
from fedimint_gw.fedimint.lnv2.transactions import lnv2_output
from fedimint_gw.fedimint.mint_api import submit_transaction
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transaction import OutPoint
from fedimint_gw.fedimint.transport import TransportSettings
from fedimint_gw.store.db import Database
from tests.e2e.conftest import wait_until
from tests.support.lnv2_wallet import Lnv2Wallet

PARAMS = FedimintParams(name="e2e-lnv2-adapter", lnv2=True)
FAST = TransportSettings(call_timeout=5.0, connect_timeout=2.0, reconnect_delay=0.05, max_reconnect_delay=0.1)
AMOUNT = 20_000
BOLT11 = "lnbcrt200n1pexample"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def fm(tmp_path: Path) -> AsyncIterator[RunningFedimint]:
    running = await start_fedimint(tmp_path / "fm", PARAMS)
    yield running
    await running.stop()


@pytest.fixture
async def api(fm: RunningFedimint, session: aiohttp.ClientSession) -> AsyncIterator[FederationApi]:
    federation_api = FederationApi.from_config(fm.federation.client_config, session, FAST)
    yield federation_api
    await federation_api.close()


@pytest.fixture
def user(fm: RunningFedimint, api: FederationApi, session: aiohttp.ClientSession) -> Lnv2Wallet:
    return Lnv2Wallet(fm, api, session)


@pytest.fixture
async def client(
    tmp_path: Path, fm: RunningFedimint, api: FederationApi, session: aiohttp.ClientSession
) -> AsyncIterator[Lnv2FederationClient]:
    db = await Database.open(str(tmp_path / "gw.sqlite"))
    config = fm.federation.client_config
    notes = FedimintNotes(
        db, fm.federation_id, MINT_INSTANCE_ID, fm.federation.mint_config, bytes([9]) * 32, SystemClock()
    )
    apis = tuple((p, u.url) for p, u in sorted(config.api_endpoints.items()))
    mint = MintClient(notes, api, apis, accept_check_timeout=1.0)
    lnv2 = Lnv2Gateway(
        notes,
        mint,
        api,
        LNV2_INSTANCE_ID,
        Lnv2ClientConfig.from_bytes(config.modules[LNV2_INSTANCE_ID].raw),
        bytes([7]) * 32,
        SystemClock(),
    )
    made = Lnv2FederationClient(fm.federation_id, "e2e", api, notes, mint, lnv2, SystemClock())
    got = await faucet_notes(session, fm.admin_url, config, 100_000)
    assert await made.receive_ecash(got.oob.encode()) == Msat(100_000)
    yield made
    await db.close()


def registration(url: str) -> GatewayRegistration:
    return GatewayRegistration("02" + "11" * 32, ShortChannelId.from_int(1), url, FeeSchedule(0, 0), 600)


async def test_info_registration_and_block_height(client: Lnv2FederationClient, user: Lnv2Wallet) -> None:
    assert as_federation_client(client) is client
    info = await client.info()
    assert (info.guardians, info.threshold, info.block_height) == (4, 3, 0)
    status = await client.register(registration("http://gw.example/"))
    assert status.status is RegistrationStatus.NOT_VETTED
    await user.admin({"add_gateway": "http://gw.example"})
    assert (await client.register(registration("http://gw.example/"))).status is RegistrationStatus.VETTED
    await user.admin({"block_count": 12})
    assert await client.block_height() == 12


async def test_receive_as_the_services_drive_it(client: Lnv2FederationClient, user: Lnv2Wallet) -> None:
    preimage = secrets.token_bytes(32)
    contract = user.incoming_contract(
        bytes.fromhex(client.gateway_pubkey), AMOUNT, int(time.time()) + 3600, preimage
    )
    request = await client.accept_incoming_contract(contract.to_json(), Msat(AMOUNT))
    assert request.payment_hash == hashlib.sha256(preimage).hexdigest()
    assert request.contract_id == contract.contract_id().hex()
    assert await client.lookup_incoming(request.payment_hash) is None
    assert await client.abandon_funding("pay-1") is True  # nothing stored yet: it never happened
    handle = await client.fund_incoming(request, "pay-1")
    assert await client.fund_incoming(request, "pay-1") == handle
    assert await client.abandon_funding("pay-1") is False  # accepted: it happened
    outcome = await client.await_preimage(handle, 1.0)
    assert outcome.state is IncomingState.PREIMAGE and outcome.preimage == preimage

    async def exact() -> bool:  # the funding's change notes are collected after its acceptance
        return await client.balance() == Msat(100_000 - AMOUNT)

    await wait_until(exact)


async def test_an_interrupted_funding_is_made_impossible_by_abandon_never_submitted(
    client: Lnv2FederationClient, user: Lnv2Wallet, api: FederationApi
) -> None:
    contract = user.incoming_contract(
        bytes.fromhex(client.gateway_pubkey), AMOUNT, int(time.time()) + 3600, secrets.token_bytes(32)
    )
    # stored, then the process died before sending it: the HTLC may be gone, so abandoning
    # must not fund the contract (that would pay the receiver for nothing): it spends the
    # funding's notes back to us instead, and the funding can never land afterwards
    op = await client._notes.prepare_fund(
        "pay-2", FUND, Msat(AMOUNT), Msat(0), lnv2_output(LNV2_INSTANCE_ID, contract)
    )
    assert await client.abandon_funding("pay-2") is True
    assert await client.balance() == Msat(100_000)
    assert not (await submit_transaction(api, op.tx)).accepted
    assert await client.abandon_funding("pay-2") is True  # asked again: the same answer
    assert await client.balance() == Msat(100_000)


async def test_altered_requests_and_bad_contracts_are_refused(
    client: Lnv2FederationClient, user: Lnv2Wallet
) -> None:
    contract = user.incoming_contract(
        bytes.fromhex(client.gateway_pubkey), AMOUNT, int(time.time()) + 3600, secrets.token_bytes(32)
    )
    request = await client.accept_incoming_contract(contract.to_json(), Msat(AMOUNT))
    other = user.incoming_contract(
        bytes.fromhex(client.gateway_pubkey), AMOUNT, int(time.time()) + 3600, secrets.token_bytes(32)
    )
    with pytest.raises(InvalidInput):
        await client.fund_incoming(replace(request, data={"contract": other.to_json()}), "pay-3")
    with pytest.raises(InvalidInput):
        await client.accept_incoming_contract({"commitment": {}}, Msat(AMOUNT))
    with pytest.raises(InvalidInput):
        await client.await_preimage("lnv2in:zz", 1.0)
    assert await client.balance() == Msat(100_000)


async def test_send_as_the_services_drive_it(client: Lnv2FederationClient, user: Lnv2Wallet) -> None:
    preimage = secrets.token_bytes(32)
    await user.admin({"block_count": 100})
    contract = user.outgoing_contract(
        bytes.fromhex(client.gateway_pubkey), AMOUNT, 200, hashlib.sha256(preimage).digest()
    )
    _, outpoint = await user.fund(contract, AMOUNT)
    handle = outgoing_handle(outpoint, contract)
    view = await client.verify_outgoing(handle)
    assert view.state is OutgoingState.FUNDED and view.gateway_key_matches
    assert (view.amount, view.timelock_height) == (Msat(AMOUNT), 200)
    assert view.payment_hash == hashlib.sha256(preimage).hexdigest()
    auth = sign_schnorr(user.key, items.invoice_auth_message(BOLT11)).hex()
    assert await client.check_send_auth(handle, BOLT11, auth)
    assert not await client.check_send_auth(handle, BOLT11 + "q", auth)
    assert not await client.check_send_auth(handle, BOLT11, {"sig": auth})
    assert await client.claim_outgoing(handle, preimage) == Msat(AMOUNT)
    # a replay after the claim spent the contract returns the same, and moves nothing
    assert await client.claim_outgoing(handle, preimage) == Msat(AMOUNT)
    assert await client.balance() == Msat(100_000 + AMOUNT)
    with pytest.raises(NotFound):
        await client.verify_outgoing(handle)


async def test_a_forged_handle_finds_nothing_to_take(client: Lnv2FederationClient, user: Lnv2Wallet) -> None:
    mine = user.outgoing_contract(bytes.fromhex(client.gateway_pubkey), AMOUNT, 100, secrets.token_bytes(32))
    _, outpoint = await user.fund(mine, AMOUNT)
    richer = user.outgoing_contract(
        bytes.fromhex(client.gateway_pubkey), AMOUNT * 10, 100, mine.payment_image.value
    )
    with pytest.raises(InvalidInput):
        await client.verify_outgoing(outgoing_handle(outpoint, richer))
    with pytest.raises(NotFound):
        await client.verify_outgoing(outgoing_handle(OutPoint(bytes(32), 0), mine))
    with pytest.raises(InvalidInput):
        await client.verify_outgoing("send:" + "00" * 10)


async def test_cancel_hands_the_user_a_forfeit_signature(
    client: Lnv2FederationClient, user: Lnv2Wallet
) -> None:
    contract = user.outgoing_contract(
        bytes.fromhex(client.gateway_pubkey), AMOUNT, 100, secrets.token_bytes(32)
    )
    _, outpoint = await user.fund(contract, AMOUNT)
    cancel = await client.cancel_outgoing(outgoing_handle(outpoint, contract))
    assert cancel.forfeit_signature is not None
    signature = bytes.fromhex(cancel.forfeit_signature)
    witness = items.OutgoingWitness(items.WitnessKind.CANCEL, signature)
    assert (await user.spend(items.OutgoingInput(outpoint, witness), AMOUNT)).accepted


async def test_ecash_in_and_out(client: Lnv2FederationClient) -> None:
    spent = await client.spend_ecash(Msat(5_000), "out-1")
    assert spent.amount == Msat(5_000)
    summary = await client.inspect_ecash(spent.notes)
    assert summary.amount == Msat(5_000) and not summary.received
    assert summary.federation_id == client._fid.hex
    assert await client.receive_ecash(spent.notes) == Msat(5_000)
    assert (await client.inspect_ecash(spent.notes)).received
    with pytest.raises(InvalidInput):
        await client.inspect_ecash("not notes")


async def test_the_factory_builds_the_client_as_the_links_would(
    tmp_path: Path, fm: RunningFedimint, session: aiohttp.ClientSession, user: Lnv2Wallet
) -> None:
    factory = FACTORY
    assert (factory.major, factory.name) == (FEDIMINT_LNV2_MAJOR, "fedimint-lnv2")
    raw = await factory.fetch_config(session, fm.guardian_urls[0], 5.0)
    desc = factory.describe(raw)
    assert desc.guardian_urls == fm.guardian_urls and desc.threshold == 3
    db = await Database.open(str(tmp_path / "factory.sqlite"))
    try:
        ctx = AdapterContext(
            federation_id=fm.federation_id.hex,
            config=raw,
            guardian_urls=desc.guardian_urls,
            api_version=ApiVersion(FEDIMINT_LNV2_MAJOR, 0),
            session=session,
            clock=SystemClock(),
            wallet=NoteWallet(db, fm.federation_id.hex, SystemClock()),
            gateway_secret=bytes([5]) * 32,
            request_timeout=5.0,
        )
        made = as_federation_client(factory.create(ctx))
        assert made.gateway_pubkey == public_key_of(bytes([5]) * 32).hex()
        assert (await made.info()).api_version == ApiVersion(FEDIMINT_LNV2_MAJOR, 0)
        got = await faucet_notes(session, fm.admin_url, fm.federation.client_config, 50_000)
        assert await made.receive_ecash(got.oob.encode()) == Msat(50_000)
        contract = user.incoming_contract(
            bytes.fromhex(made.gateway_pubkey), AMOUNT, int(time.time()) + 3600, secrets.token_bytes(32)
        )
        request = await made.accept_incoming_contract(contract.to_json(), Msat(AMOUNT))
        handle = await made.fund_incoming(request, "factory-1")
        assert (await made.await_preimage(handle, 1.0)).state is IncomingState.PREIMAGE
        with pytest.raises(ValueError):
            factory.describe({"api_endpoints": "nope"})
        await made.close()
    finally:
        await db.close()


async def test_the_factory_refuses_a_config_of_another_federation(
    tmp_path: Path, fm: RunningFedimint, session: aiohttp.ClientSession
) -> None:
    raw = await FACTORY.fetch_config(session, fm.guardian_urls[0], 5.0)
    db = await Database.open(str(tmp_path / "other.sqlite"))
    try:
        ctx = AdapterContext(
            federation_id="ab" * 32,  # the config hashes to fm's id, not this one
            config=raw,
            guardian_urls=fm.guardian_urls,
            api_version=ApiVersion(FEDIMINT_LNV2_MAJOR, 0),
            session=session,
            clock=SystemClock(),
            wallet=NoteWallet(db, "ab" * 32, SystemClock()),
            gateway_secret=bytes([5]) * 32,
            request_timeout=5.0,
        )
        with pytest.raises(InvalidInput):
            FACTORY.create(ctx)
    finally:
        await db.close()


async def test_funding_without_enough_ecash_stores_nothing(
    client: Lnv2FederationClient, user: Lnv2Wallet
) -> None:
    contract = user.incoming_contract(
        bytes.fromhex(client.gateway_pubkey), 150_000, int(time.time()) + 3600, secrets.token_bytes(32)
    )
    request = await client.accept_incoming_contract(contract.to_json(), Msat(150_000))
    with pytest.raises(InsufficientFunds):
        await client.fund_incoming(request, "too-much")
    assert await client._notes.get("too-much") is None
    assert await client.balance() == Msat(100_000)
    assert await client.abandon_funding("too-much") is True


async def test_a_federation_that_is_down_gives_typed_errors(
    fm: RunningFedimint, client: Lnv2FederationClient, user: Lnv2Wallet
) -> None:
    contract = user.incoming_contract(
        bytes.fromhex(client.gateway_pubkey), AMOUNT, int(time.time()) + 3600, secrets.token_bytes(32)
    )
    request = await client.accept_incoming_contract(contract.to_json(), Msat(AMOUNT))
    mine = user.outgoing_contract(bytes.fromhex(client.gateway_pubkey), AMOUNT, 100, secrets.token_bytes(32))
    _, outpoint = await user.fund(mine, AMOUNT)
    for guardian in fm.federation.guardians:
        guardian.fault = FaultMode.OFFLINE
    with pytest.raises(FederationUnreachable):
        await client.info()
    with pytest.raises(FederationUnreachable):
        await client.fund_incoming(request, "down-1")
    with pytest.raises(FederationUnreachable):  # stored, outcome unknown: a doubt, not a no
        await client.abandon_funding("down-1")
    with pytest.raises(FederationUnreachable):
        await client.verify_outgoing(outgoing_handle(outpoint, mine))
    for guardian in fm.federation.guardians:
        guardian.fault = FaultMode.HONEST
    handle = await client.fund_incoming(request, "down-1")  # the same stored funding, once
    assert (await client.await_preimage(handle, 1.0)).state is IncomingState.PREIMAGE

    async def exact() -> bool:  # the funding's change notes are finished after it is accepted
        return await client.balance() == Msat(100_000 - AMOUNT)

    await wait_until(exact)
