"""Ecash: faucet, wallet-to-wallet transfer, double spend, threshold, byzantine, restart."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from contrib.devfed.errors import DevfedError, ErrorCode
from contrib.devfed.server import RunningFederation, start_federation
from contrib.devfed.wallet import Wallet, decode_notes

from .conftest import SMALL, WalletFactory, set_fault


@pytest.mark.parametrize("major", [1, 2])
async def test_wallet_to_wallet_transfer(
    fed: RunningFederation, make_wallet: WalletFactory, major: int
) -> None:
    alice = await make_wallet(fed, "alice", major)
    bob = await make_wallet(fed, "bob", major)
    assert alice.client.major == major
    await alice.faucet(10_000)
    assert alice.balance_msat() == 10_000
    ecash = await alice.send_ecash(3_000)
    assert alice.balance_msat() == 7_000
    assert await bob.receive_ecash(ecash) == 3_000
    assert bob.balance_msat() == 3_000


async def test_double_spend_refused(fed: RunningFederation, make_wallet: WalletFactory) -> None:
    alice = await make_wallet(fed, "alice")
    bob = await make_wallet(fed, "bob")
    carol = await make_wallet(fed, "carol")
    await alice.faucet(4_096)
    ecash = await alice.send_ecash(4_096)
    assert await bob.receive_ecash(ecash) == 4_096
    spent_before = fed.federation.store.count_spent()
    with pytest.raises(DevfedError) as err:
        await carol.receive_ecash(ecash)
    assert err.value.code is ErrorCode.DOUBLE_SPEND
    assert carol.balance_msat() == 0
    assert fed.federation.store.count_spent() == spent_before


async def test_forged_note_refused(fed: RunningFederation, make_wallet: WalletFactory) -> None:
    alice = await make_wallet(fed, "alice")
    await alice.faucet(8)
    note = alice.notes()[0]
    forged = type(note)(note.amount_msat, "11" * 32, note.C)
    with pytest.raises(DevfedError) as err:
        await alice.reissue([forged])
    assert err.value.code is ErrorCode.INVALID_NOTE


async def test_threshold_guardians_suffice_and_fewer_do_not(
    fed: RunningFederation, make_wallet: WalletFactory, session: aiohttp.ClientSession
) -> None:
    alice = await make_wallet(fed, "alice")
    await set_fault(session, fed, 3, "offline")  # 3 of 4 online = threshold
    await alice.faucet(1_000)
    ecash = await alice.send_ecash(500)
    assert alice.balance_msat() == 500
    await set_fault(session, fed, 2, "offline")  # 2 of 4 online < threshold
    with pytest.raises(DevfedError) as err:
        await alice.receive_ecash(ecash)
    assert err.value.code is ErrorCode.NO_CONSENSUS
    await set_fault(session, fed, 2, "honest")
    assert await alice.receive_ecash(ecash) == 500


async def test_byzantine_guardian_detected(
    fed: RunningFederation, make_wallet: WalletFactory, session: aiohttp.ClientSession
) -> None:
    alice = await make_wallet(fed, "alice")
    await set_fault(session, fed, 1, "byzantine")
    await alice.faucet(777)
    assert alice.last_rejected_peers == (1,)
    assert alice.balance_msat() == 777
    # its bad evaluations are filtered in consensus too: a valid spend still goes through
    ecash = await alice.send_ecash(100)
    assert decode_notes(ecash)[1]
    await set_fault(session, fed, 2, "byzantine")
    with pytest.raises(DevfedError) as err:
        await alice.faucet(5)
    assert err.value.code is ErrorCode.NO_CONSENSUS


async def test_slow_guardian_still_works(
    fed: RunningFederation, make_wallet: WalletFactory, session: aiohttp.ClientSession
) -> None:
    alice = await make_wallet(fed, "alice")
    await set_fault(session, fed, 0, "slow", delay_ms=200)
    await alice.faucet(64)
    assert alice.balance_msat() == 64


async def test_restart_keeps_state(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    data = tmp_path / "fed"
    first = await start_federation(data, SMALL)
    wallet = Wallet.open(tmp_path / "w.sqlite", session)
    try:
        await wallet.join(first.invite_code)
        await wallet.faucet(2_048)
        ecash = await wallet.send_ecash(1_024)
        txs = first.federation.store.count_transactions()
        await first.stop()
        second = await start_federation(data, SMALL)
        try:
            assert second.invite_code == first.invite_code
            assert second.federation.store.count_transactions() == txs
            assert await wallet.receive_ecash(ecash) == 1_024
            with pytest.raises(DevfedError) as err:
                await wallet.receive_ecash(ecash)
            assert err.value.code is ErrorCode.DOUBLE_SPEND
            assert wallet.balance_msat() == 2_048
        finally:
            await second.stop()
    finally:
        wallet.close()


async def test_bad_invite_code(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    wallet = Wallet.open(tmp_path / "w.sqlite", session)
    with pytest.raises(DevfedError) as err:
        await wallet.join("fed1notaninvite")
    assert err.value.code is ErrorCode.INVALID_REQUEST
    wallet.close()
