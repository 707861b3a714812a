"""The gateway's Fedimint mint client (note store + driver) against devfed's Fedimint family."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from contrib.devfed.fedimint.faucet import faucet_notes, fresh_secrets
from contrib.devfed.fedimint.keys import MINT_INSTANCE_ID, FedimintParams
from contrib.devfed.fedimint.server import RunningFedimint, start_fedimint
from fedimint_gw.clock import SystemClock
from fedimint_gw.crypto.bls import dealer, tbs
from fedimint_gw.domain.amount import Msat
from fedimint_gw.errors import (
    FederationRejected,
    FederationUnreachable,
    InsufficientFunds,
    InvalidInput,
    NotReady,
)
from fedimint_gw.federation.fedimint.mint import MintClient, receive_operation_id
from fedimint_gw.federation.fedimint.notes import FedimintNotes, MintOpState
from fedimint_gw.fedimint.config import ConsensusVersion
from fedimint_gw.fedimint.encoding import decode_whole
from fedimint_gw.fedimint.mint_api import submit_transaction
from fedimint_gw.fedimint.mint_client import check_note
from fedimint_gw.fedimint.mint_errors import NoteInvalid
from fedimint_gw.fedimint.mint_types import MintClientConfig, MintInputV0, SpendableNote, read_mint_input
from fedimint_gw.fedimint.oob import OOBNotes, parse_oob_notes
from fedimint_gw.fedimint.query import FederationApi
from fedimint_gw.fedimint.transport import TransportSettings
from fedimint_gw.store.db import Database

# Fees on, and core consensus 2.0: our client must balance every transaction exactly.
PARAMS = FedimintParams(name="e2e-fm", fee_base_msat=100, fee_ppm=1000, core_consensus=ConsensusVersion(2, 0))
FAST = TransportSettings(call_timeout=5.0, connect_timeout=2.0, reconnect_delay=0.05, max_reconnect_delay=0.1)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
async def fm(tmp_path: Path) -> AsyncIterator[RunningFedimint]:
    running = await start_fedimint(tmp_path / "fm", PARAMS)
    yield running
    await running.stop()


class Wallet:
    """A database plus a mint client for the federation: what a gateway instance holds."""

    def __init__(self, db: Database, fm: RunningFedimint, api: FederationApi, root: bytes) -> None:
        config = fm.federation.client_config
        self.db = db
        self.notes = FedimintNotes(
            db, fm.federation_id, MINT_INSTANCE_ID, fm.federation.mint_config, root, SystemClock()
        )
        apis = tuple((p, u.url) for p, u in sorted(config.api_endpoints.items()))
        self.client = MintClient(self.notes, api, apis, accept_check_timeout=1.0)


@pytest.fixture
async def make_wallet(
    tmp_path: Path, fm: RunningFedimint, session: aiohttp.ClientSession
) -> AsyncIterator[object]:
    """make(name, root): a wallet on database `name` (the same name again: a restarted gateway)."""
    opened: list[tuple[Database, FederationApi]] = []

    async def make(name: str, root: bytes | None = None) -> Wallet:
        db = await Database.open(str(tmp_path / f"{name}.sqlite"))
        api = FederationApi.from_config(fm.federation.client_config, session, FAST)
        opened.append((db, api))
        return Wallet(db, fm, api, root or secrets.token_bytes(32))

    yield make
    for db, api in opened:
        await api.close()
        await db.close()


def fees(mint: MintClientConfig, amounts: list[int]) -> int:
    return sum(mint.fee_consensus.fee(a) for a in amounts)


async def funded(
    make_wallet: object, fm: RunningFedimint, session: aiohttp.ClientSession, amount: int
) -> Wallet:
    wallet: Wallet = await make_wallet("gw")  # type: ignore[operator]
    got = await faucet_notes(session, fm.admin_url, fm.federation.client_config, amount)
    await wallet.client.receive(got.oob)
    return wallet


async def test_receive_reissues_and_charges_exactly_the_fees(
    fm: RunningFedimint, session: aiohttp.ClientSession, make_wallet: object
) -> None:
    wallet: Wallet = await make_wallet("gw")  # type: ignore[operator]
    got = await faucet_notes(session, fm.admin_url, fm.federation.client_config, 20_000)
    result = await wallet.client.receive(got.oob)
    mint = fm.federation.mint_config
    op = await wallet.notes.get(result.operation_id)
    assert op is not None and op.state is MintOpState.DONE
    outputs = [o.amount for o in op.outputs]
    assert result.received.value == sum(outputs) == (await wallet.notes.balance()).value
    assert sum(outputs) + fees(mint, [n.amount for n in got.notes]) + fees(mint, outputs) == 20_000
    # The same notes again: the same operation, nothing new at the federation.
    sessions = fm.federation.store.session_count()
    assert (await wallet.client.receive(got.oob)).operation_id == result.operation_id
    assert fm.federation.store.session_count() == sessions
    assert (await wallet.notes.balance()).value == result.received.value


async def test_spend_makes_exact_notes_another_wallet_can_receive(
    fm: RunningFedimint, session: aiohttp.ClientSession, make_wallet: object
) -> None:
    wallet = await funded(make_wallet, fm, session, 30_000)
    before = (await wallet.notes.balance()).value
    spent = await wallet.client.spend("spend-1", Msat(5_000))
    oob = parse_oob_notes(spent.oob)
    assert oob.total_msat == 5_000 == spent.amount.value
    assert oob.federation_id_prefix == fm.federation_id.raw[:4]
    for amount, notes in oob.notes.items():
        for note in notes:
            check_note(amount, note, fm.federation.mint_config)
    op = await wallet.notes.get("spend-1")
    assert op is not None
    mint = fm.federation.mint_config
    inputs = [input_amount(op.tx.inputs[i].data) for i in range(len(op.tx.inputs))]
    # We paid exactly the amount plus the fee of every input and output, and kept the change.
    paid = before - (await wallet.notes.balance()).value
    assert paid == 5_000 + fees(mint, inputs) + fees(mint, [o.amount for o in op.outputs])
    assert paid == sum(inputs) - sum(o.amount for o in op.change)
    # What the spend really cost, as the adapters report it (EcashNotes.fee), now and on a replay.
    assert (await wallet.notes.spend_fee("spend-1")).value == paid - 5_000
    await wallet.client.spend("spend-1", Msat(5_000))
    assert (await wallet.notes.spend_fee("spend-1")).value == paid - 5_000
    other: Wallet = await make_wallet("other")  # type: ignore[operator]
    received = await other.client.receive(oob)
    assert received.received.value == (await other.notes.balance()).value > 0
    # The reissue cost what every client of the federation computes from its config alone.
    assert 5_000 - received.received.value == wallet.notes.note_fees(Msat(5_000)).reissue > 0


def input_amount(data: bytes) -> int:
    value = decode_whole(data, read_mint_input)
    assert isinstance(value, MintInputV0)
    return value.amount


async def test_a_crash_after_storing_the_spend_is_replayed(
    fm: RunningFedimint, session: aiohttp.ClientSession, make_wallet: object
) -> None:
    root = secrets.token_bytes(32)
    wallet: Wallet = await make_wallet("gw", root)  # type: ignore[operator]
    got = await faucet_notes(session, fm.admin_url, fm.federation.client_config, 30_000)
    await wallet.client.receive(got.oob)
    # Crash 1: the spend is stored, nothing was sent.
    await wallet.notes.prepare_spend("crash-before-submit", Msat(4_000))
    sessions = fm.federation.store.session_count()
    # Crash 2: another spend was submitted and accepted, the notes were never collected.
    op2 = await wallet.notes.prepare_spend("crash-after-submit", Msat(2_000))
    assert (
        await submit_transaction(FederationApi.from_config(fm.federation.client_config, session), op2.tx)
    ).accepted
    assert fm.federation.store.session_count() == sessions + 1
    # A restarted gateway (same database, same root secret) finishes both, once each.
    restarted: Wallet = await make_wallet("gw", root)  # type: ignore[operator]
    assert sorted(await restarted.client.resume()) == ["crash-after-submit", "crash-before-submit"]
    assert fm.federation.store.session_count() == sessions + 2
    for op_id, amount in (("crash-before-submit", 4_000), ("crash-after-submit", 2_000)):
        op = await wallet.notes.get(op_id)
        assert op is not None and op.state is MintOpState.DONE
        assert parse_oob_notes(op.result["oob"]).total_msat == amount
    assert await restarted.client.resume() == []


async def test_notes_someone_else_reissued_first_are_refused_and_nothing_is_credited(
    fm: RunningFedimint, session: aiohttp.ClientSession, make_wallet: object
) -> None:
    got = await faucet_notes(session, fm.admin_url, fm.federation.client_config, 9_000)
    first: Wallet = await make_wallet("first")  # type: ignore[operator]
    second: Wallet = await make_wallet("second")  # type: ignore[operator]
    await first.client.receive(got.oob)
    with pytest.raises(FederationRejected, match="input was refused"):
        await second.client.receive(got.oob)
    op = await second.notes.get(receive_operation_id(got.oob))
    assert op is not None and op.state is MintOpState.FAILED
    assert (await second.notes.balance()).value == 0


async def test_notes_of_a_wrong_key_are_refused_before_anything_is_stored(
    fm: RunningFedimint, make_wallet: object
) -> None:
    wallet: Wallet = await make_wallet("gw")  # type: ignore[operator]
    other = tbs.dealer_keys(dealer.random_coefficients(1), 1)
    secret = fresh_secrets(256)
    share = tbs.sign_message(secret.blinded(), other.secret_key_shares[0])
    sig = tbs.unblind_signature(tbs.BlindingKey(secret.blinding_key), tbs.BlindedSignature(share.point))
    oob = OOBNotes.new(fm.federation_id, {256: (SpendableNote(sig.encode(), secret.spend_key),)})
    with pytest.raises(NoteInvalid):
        await wallet.client.receive(oob)
    assert await wallet.notes.get(receive_operation_id(oob)) is None
    assert fm.federation.store.session_count() == 0


async def test_without_a_threshold_of_guardians_the_operation_waits_and_resumes(
    fm: RunningFedimint, session: aiohttp.ClientSession, make_wallet: object
) -> None:
    got = await faucet_notes(session, fm.admin_url, fm.federation.client_config, 7_000)
    wallet: Wallet = await make_wallet("gw")  # type: ignore[operator]
    for peer in (1, 2):
        async with session.post(
            f"{fm.admin_url}/admin/guardians/{peer}/fault", json={"mode": "offline"}
        ) as r:
            assert r.status == 200
    with pytest.raises(FederationUnreachable):
        await wallet.client.receive(got.oob)
    op = await wallet.notes.get(receive_operation_id(got.oob))
    assert op is not None and op.state is MintOpState.PREPARED
    assert fm.federation.store.session_count() == 1  # only the faucet's
    for peer in (1, 2):
        async with session.post(f"{fm.admin_url}/admin/guardians/{peer}/fault", json={"mode": "honest"}) as r:
            assert r.status == 200
    assert await wallet.client.resume() == [op.operation_id]
    assert (await wallet.notes.balance()).value > 0


async def test_a_refused_replay_of_an_accepted_transaction_is_not_released(
    fm: RunningFedimint, session: aiohttp.ClientSession, make_wallet: object
) -> None:
    root = secrets.token_bytes(32)
    wallet: Wallet = await make_wallet("gw", root)  # type: ignore[operator]
    await wallet.client.receive(
        (await faucet_notes(session, fm.admin_url, fm.federation.client_config, 30_000)).oob
    )
    held = (await wallet.notes.balance()).value
    op = await wallet.notes.prepare_spend("accepted-then-crash", Msat(3_000))
    api = FederationApi.from_config(fm.federation.client_config, session)
    try:
        assert (await submit_transaction(api, op.tx)).accepted
    finally:
        await api.close()
    # The federation now answers the replay with "input already spent" (by this very transaction).
    fm.federation.sequencer.recheck_accepted = True
    restarted: Wallet = await make_wallet("gw", root)  # type: ignore[operator]
    assert await restarted.client.resume() == ["accepted-then-crash"]
    done = await restarted.notes.get("accepted-then-crash")
    assert done is not None and done.state is MintOpState.DONE
    assert parse_oob_notes(done.result["oob"]).total_msat == 3_000
    mint = fm.federation.mint_config
    inputs = [input_amount(i.data) for i in op.tx.inputs]
    paid = 3_000 + fees(mint, inputs) + fees(mint, [o.amount for o in op.outputs])
    assert held - (await restarted.notes.balance()).value == paid


async def test_concurrent_calls_with_one_operation_id_make_one_operation(
    fm: RunningFedimint, session: aiohttp.ClientSession, make_wallet: object
) -> None:
    wallet = await funded(make_wallet, fm, session, 30_000)
    got = await faucet_notes(session, fm.admin_url, fm.federation.client_config, 3_000)
    spends = await asyncio.gather(*(wallet.notes.prepare_spend("twice", Msat(1_000)) for _ in range(3)))
    receives = await asyncio.gather(*(wallet.notes.prepare_receive("in-twice", got.oob) for _ in range(3)))
    assert len({op.tx.txid() for op in spends}) == 1
    assert len({op.tx.txid() for op in receives}) == 1
    async with wallet.db.conn.execute(
        "SELECT COUNT(*) FROM ecash_notes WHERE state = 'reserved' AND operation_id = 'twice'"
    ) as cur:
        row = await cur.fetchone()
    assert row is not None and row[0] == len(spends[0].tx.inputs)


async def test_bad_spends_are_refused_before_anything_is_stored(
    fm: RunningFedimint, session: aiohttp.ClientSession, make_wallet: object
) -> None:
    wallet = await funded(make_wallet, fm, session, 10_000)
    held = (await wallet.notes.balance()).value
    with pytest.raises(InvalidInput):
        await wallet.client.spend("zero", Msat(0))
    with pytest.raises(InsufficientFunds):
        await wallet.client.spend("too-much", Msat(held))
    assert await wallet.notes.get("zero") is None and await wallet.notes.get("too-much") is None
    # While notes are reserved by an operation in flight, the answer is "not now", not "no".
    await wallet.notes.prepare_spend("in-flight", Msat(1_000))
    with pytest.raises(NotReady):
        await wallet.client.spend("after", Msat(held - 2_000))
    assert (await wallet.notes.balance()).value < held
