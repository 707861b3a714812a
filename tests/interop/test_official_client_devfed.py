"""The official Fedimint client (npm WASM build, v0.7-era) against devfed's Fedimint family.

One Node process and two federations (no fees; fees with core consensus 2.1) serve the whole
module. Notes reach the official client from devfed's faucet: the faucet transaction's outputs
are signed by each guardian with its own key shares and combined by our mint client.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from contrib.devfed.fedimint.faucet import FaucetNotes, faucet_notes, fresh_secrets
from contrib.devfed.fedimint.keys import MINT_INSTANCE_ID, FedimintParams
from contrib.devfed.fedimint.server import RunningFedimint, start_fedimint
from contrib.official_client.driver import OfficialClient, OfficialClientError
from fedimint_gw.clock import SystemClock
from fedimint_gw.crypto.bls import dealer, tbs
from fedimint_gw.domain.amount import Msat
from fedimint_gw.federation.fedimint.mint import MintClient
from fedimint_gw.federation.fedimint.notes import FedimintNotes
from fedimint_gw.fedimint.encoding import decode_whole
from fedimint_gw.fedimint.mint_client import note_nonce
from fedimint_gw.fedimint.mint_types import MintInputV0, SpendableNote, read_mint_input
from fedimint_gw.fedimint.oob import OOBNotes, parse_oob_notes
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.store.db import Database

pytestmark = pytest.mark.asyncio(loop_scope="module")
REISSUE_TIMEOUT = 60.0


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
    running = await start_fedimint(tmp_path_factory.mktemp("fm"), FedimintParams(name="interop"))
    yield running
    await running.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fee_fed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningFedimint]:
    params = FedimintParams(name="interop-fees", fee_base_msat=100, fee_ppm=1000)
    running = await start_fedimint(tmp_path_factory.mktemp("fm-fees"), params)
    yield running
    await running.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def fees(client: OfficialClient, fee_fed: RunningFedimint) -> str:
    """A client joined to the federation with fees (its name)."""
    await client.join("fees", fee_fed.invite_code, timeout=30)
    return "fees"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def plain(client: OfficialClient, fed: RunningFedimint) -> str:
    """A client joined to the fee-less federation (its name)."""
    await client.join("plain", fed.invite_code, timeout=30)
    return "plain"


async def notes_from(fed: RunningFedimint, session: aiohttp.ClientSession, amount: int) -> FaucetNotes:
    return await faucet_notes(session, fed.admin_url, fed.federation.client_config, amount)


async def balance(client: OfficialClient, name: str) -> int:
    value = await client.rpc_one("", "get_balance", {}, client_name=name)
    assert isinstance(value, int)
    return value


async def reissue(client: OfficialClient, name: str, oob: str) -> list[object]:
    """reissue_external_notes, then its state updates until Done or Failed."""
    op = await client.rpc_one(
        "mint", "reissue_external_notes", {"oob_notes": oob, "extra_meta": None}, client_name=name
    )
    states = []
    for state in await client.rpc(
        "mint",
        "subscribe_reissue_external_notes",
        {"operation_id": op},
        client_name=name,
        timeout=REISSUE_TIMEOUT,
    ):
        states.append(state)
        if state == "Done" or (isinstance(state, dict) and "Failed" in state):
            break
    return states


def session_outputs(fed: RunningFedimint, session_index: int) -> list[int]:
    """The mint output amounts of the transaction accepted in `session_index` (1-based)."""
    txid = fed.federation.store.session_transaction(session_index)
    assert txid is not None
    return fed.federation.store.output_amounts(txid)


async def test_previews_and_joins_with_the_right_federation_id(
    client: OfficialClient, fed: RunningFedimint
) -> None:
    preview = await client.preview_federation(fed.invite_code)
    assert preview["federation_id"] == fed.federation_id.hex
    assert preview["config"]["global"]["meta"] == {"federation_name": "interop"}
    await client.join("preview-then-join", fed.invite_code, timeout=30)
    joined = await client.rpc_one("", "get_federation_id", {}, client_name="preview-then-join")
    assert joined == fed.federation_id.hex
    assert await balance(client, "preview-then-join") == 0
    assert fed.federation.unserved == []


async def test_reissues_notes_devfed_issued(
    client: OfficialClient, fed: RunningFedimint, session: aiohttp.ClientSession, plain: str
) -> None:
    before = await balance(client, plain)
    got = await notes_from(fed, session, 21_000)
    oob = got.oob.encode()
    assert await client.rpc("mint", "validate_notes", {"oob_notes": oob}, client_name=plain) == [21_000]
    states = await reissue(client, plain, oob)
    assert states[-1] == "Done", states
    assert await balance(client, plain) == before + 21_000
    for note in got.notes:
        assert fed.federation.store.spent_by(note_nonce(note.note)) is not None
    assert fed.federation.unserved == []


def forged_oob(fed: RunningFedimint, amount: int) -> OOBNotes:
    """A note of a real tier, signed with a key that is not the federation's."""
    other = tbs.dealer_keys(dealer.random_coefficients(1), 1)
    secret = fresh_secrets(amount)
    share = tbs.sign_message(secret.blinded(), other.secret_key_shares[0])
    signature = tbs.unblind_signature(tbs.BlindingKey(secret.blinding_key), tbs.BlindedSignature(share.point))
    config = fed.federation.client_config
    apis = tuple((p, u.url) for p, u in config.api_endpoints.items())
    return OOBNotes.new(
        fed.federation_id, {amount: (SpendableNote(signature.encode(), secret.spend_key),)}, apis
    )


async def test_refuses_a_note_signed_with_a_wrong_key(
    client: OfficialClient, fed: RunningFedimint, plain: str
) -> None:
    before = await balance(client, plain)
    sessions = fed.federation.store.session_count()
    oob = forged_oob(fed, 1024).encode()
    with pytest.raises(OfficialClientError):
        await client.rpc("mint", "validate_notes", {"oob_notes": oob}, client_name=plain)
    try:
        states = await reissue(client, plain, oob)
    except OfficialClientError:
        states = ["refused before submission"]
    assert states[-1] != "Done", states
    assert await balance(client, plain) == before
    assert fed.federation.store.session_count() == sessions


async def test_reissue_with_fees_pays_the_federation_its_fees(
    client: OfficialClient, fee_fed: RunningFedimint, session: aiohttp.ClientSession, fees: str
) -> None:
    before = await balance(client, fees)
    got = await notes_from(fee_fed, session, 50_000)
    states = await reissue(client, fees, got.oob.encode())
    assert states[-1] == "Done", states
    received = await balance(client, fees) - before
    # What the client holds is exactly what devfed issued in the reissue transaction ...
    outputs = session_outputs(fee_fed, fee_fed.federation.store.session_count())
    assert received == sum(outputs)
    # ... and the rest paid every input's and output's fee (base 100 msat + 1000 ppm); what is
    # left over (the client overpays, allowed from core consensus 2.1) is less than one 1-msat
    # note would cost.
    fee = fee_fed.federation.mint_config.fee_consensus
    paid = sum(fee.fee(n.amount) for n in got.notes) + sum(fee.fee(a) for a in outputs)
    assert 0 <= 50_000 - received - paid < 1 + fee.fee(1)
    assert fee_fed.federation.unserved == []


@asynccontextmanager
async def our_wallet(
    fed: RunningFedimint, session: aiohttp.ClientSession, path: Path
) -> AsyncIterator[MintClient]:
    """The gateway's mint client (note store in its own database) for `fed`."""
    db = await Database.open(str(path))
    config = fed.federation.client_config
    api = FederationApi.from_config(config, session)
    notes = FedimintNotes(
        db,
        fed.federation_id,
        MINT_INSTANCE_ID,
        fed.federation.mint_config,
        secrets.token_bytes(32),
        SystemClock(),
    )
    try:
        yield MintClient(notes, api, tuple((p, u.url) for p, u in sorted(config.api_endpoints.items())))
    finally:
        await api.close()
        await db.close()


async def fees_client(
    client: OfficialClient, fee_fed: RunningFedimint, session: aiohttp.ClientSession, name: str
) -> str:
    """The client joined to the federation with fees, holding at least 20,000 msat."""
    if await balance(client, name) < 20_000:
        got = await notes_from(fee_fed, session, 50_000)
        assert (await reissue(client, name, got.oob.encode()))[-1] == "Done"
    return name


async def test_our_client_receives_notes_the_official_client_spent(
    client: OfficialClient,
    fee_fed: RunningFedimint,
    session: aiohttp.ClientSession,
    tmp_path: Path,
    fees: str,
) -> None:
    name = await fees_client(client, fee_fed, session, fees)
    before = await balance(client, name)
    ((_op, text),) = await client.rpc(
        "mint",
        "spend_notes",
        {
            "amount": 5_000,
            "try_cancel_after": {"secs": 3600, "nanos": 0},
            "include_invite": True,
            "extra_meta": None,
        },
        client_name=name,
    )
    oob = parse_oob_notes(text)
    assert oob.total_msat >= 5_000
    assert before - await balance(client, name) == oob.total_msat
    async with our_wallet(fee_fed, session, tmp_path / "gw.sqlite") as ours:
        got = await ours.receive(oob)
        fee = fee_fed.federation.mint_config.fee_consensus
        op = await ours.notes.get(got.operation_id)
        assert op is not None
        outputs = [o.amount for o in op.outputs]
        in_fees = sum(fee.fee(a) * len(n) for a, n in oob.notes.items())
        assert got.received.value == sum(outputs) == (await ours.notes.balance()).value
        assert got.received.value + in_fees + sum(fee.fee(a) for a in outputs) == oob.total_msat
    for notes in oob.notes.values():
        for note in notes:
            assert fee_fed.federation.store.spent_by(note_nonce(note)) is not None


async def test_the_official_client_reissues_notes_our_client_spent(
    client: OfficialClient,
    fee_fed: RunningFedimint,
    session: aiohttp.ClientSession,
    tmp_path: Path,
    fees: str,
) -> None:
    name = await fees_client(client, fee_fed, session, fees)
    async with our_wallet(fee_fed, session, tmp_path / "gw.sqlite") as ours:
        await ours.receive((await notes_from(fee_fed, session, 40_000)).oob)
        held = (await ours.notes.balance()).value
        spent = await ours.spend("interop-spend", Msat(7_000))
        op = await ours.notes.get("interop-spend")
        assert op is not None
        fee = fee_fed.federation.mint_config.fee_consensus
        paid = held - (await ours.notes.balance()).value
        assert paid == 7_000 + sum(fee.fee(o.amount) for o in op.outputs) + sum(
            fee.fee(input_amount(i.data)) for i in op.tx.inputs
        )
    before = await balance(client, name)
    assert await client.rpc("mint", "validate_notes", {"oob_notes": spent.oob}, client_name=name) == [7_000]
    states = await reissue(client, name, spent.oob)
    assert states[-1] == "Done", states
    gained = await balance(client, name) - before
    outputs = session_outputs(fee_fed, fee_fed.federation.store.session_count())
    assert gained == sum(outputs)
    in_fees = sum(fee.fee(a) * len(n) for a, n in parse_oob_notes(spent.oob).notes.items())
    paid = in_fees + sum(fee.fee(a) for a in outputs)
    assert 0 <= 7_000 - gained - paid < 1 + fee.fee(1)
    assert fee_fed.federation.unserved == []


def input_amount(data: bytes) -> int:
    value = decode_whole(data, read_mint_input)
    assert isinstance(value, MintInputV0)
    return value.amount


async def set_fault(session: aiohttp.ClientSession, fed: RunningFedimint, peer: int, mode: str) -> None:
    async with session.post(f"{fed.admin_url}/admin/guardians/{peer}/fault", json={"mode": mode}) as resp:
        assert resp.status == 200, await resp.text()


@pytest.mark.parametrize("mode", ["byzantine", "offline"])
async def test_one_faulty_guardian_does_not_stop_a_reissue(
    client: OfficialClient, fed: RunningFedimint, session: aiohttp.ClientSession, plain: str, mode: str
) -> None:
    """A guardian signing with a wrong key (well-formed shares) or gone: the official client checks
    every share and combines the three good ones."""
    got = await notes_from(fed, session, 3_000)
    before = await balance(client, plain)
    await set_fault(session, fed, 2, mode)
    try:
        if mode == "byzantine":  # the fault is real: our own client sees guardian 2's bad shares
            assert {n.bad_peers for n in (await notes_from(fed, session, 1)).notes} == {(2,)}
        states = await reissue(client, plain, got.oob.encode())
    finally:
        await set_fault(session, fed, 2, "honest")
    assert states[-1] == "Done", states
    assert await balance(client, plain) == before + 3_000


async def test_notes_reissued_twice_fail_the_second_time_with_a_readable_reason(
    client: OfficialClient, fed: RunningFedimint, session: aiohttp.ClientSession, plain: str
) -> None:
    """The official client decodes devfed's refusal: TransactionError::Input (4) wrapping the
    mint's SpentCoin (0)."""
    await client.join("second", fed.invite_code, timeout=30)
    got = await notes_from(fed, session, 1_000)
    assert (await reissue(client, plain, got.oob.encode()))[-1] == "Done"
    states = await reissue(client, "second", got.oob.encode())
    failed = states[-1]
    assert isinstance(failed, dict), states
    assert "The transaction had an invalid input" in failed["Failed"]
    assert "The note is already spent" in failed["Failed"]
    assert await balance(client, "second") == 0
