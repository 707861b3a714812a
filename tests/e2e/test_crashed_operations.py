"""Ecash operations a crash cut short are settled at the next start, and `fedimint-ecash-send`
retried with its request id spends once (issue 14, finding 16)."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from contrib.devfed.wallet import Wallet
from fedimint_gw.domain.amount import Msat
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.errors import InvalidInput
from fedimint_gw.federation.notes import NoteWallet
from tests.e2e.conftest import Env, wait_until
from tests.e2e.helpers import Crash


async def _balance(env: Env, fid: FederationId) -> Msat:
    return await env.gateway.federations.client(fid).balance()


@pytest.mark.parametrize("crash_at", ["prepare", "complete"])
async def test_a_crashed_ecash_send_is_settled_at_start_and_its_retry_spends_once(
    env: Env, monkeypatch: pytest.MonkeyPatch, crash_at: str
) -> None:
    fed = await env.federation("crash16", (1, 2))
    await env.gateway.federations.connect(fed.invite_code)
    fid = FederationId(fed.federation_id)
    await env.fund_gateway(fed, 100_000)
    real = getattr(NoteWallet, crash_at)

    async def crash(self: NoteWallet, *args: Any, **kwargs: Any) -> Any:
        result = None if crash_at == "complete" else await real(self, *args, **kwargs)
        raise Crash(f"died at {crash_at}")  # complete: the federation accepted, nothing stored
        return result

    monkeypatch.setattr(NoteWallet, crash_at, crash)
    with contextlib.suppress(Crash):
        await env.gateway.ecash_send(fid.hex, 1_000, "payout-7")
    monkeypatch.undo()
    assert await _balance(env, fid) < Msat(99_000)  # reserved by the cut-short operation
    await env.restart_gateway()

    async def settled() -> bool:
        return await _balance(env, fid) == Msat(99_000)

    await wait_until(settled, timeout=15.0)  # no retry needed: the start settled it
    first = await env.gateway.ecash_send(fid.hex, 1_000, "payout-7")
    again = await env.gateway.ecash_send(fid.hex, 1_000, "payout-7")
    assert first["notes"] == again["notes"] and first["amount_msat"] == 1_000
    assert await _balance(env, fid) == Msat(99_000)  # spent once
    user: Wallet = await env.wallet(fed, "payee")
    assert await user.receive_ecash(str(first["notes"])) == 1_000
    with pytest.raises(InvalidInput):  # the id names one send: another amount is refused
        await env.gateway.ecash_send(fid.hex, 2_000, "payout-7")
    with pytest.raises(InvalidInput, match="request_id"):
        await env.gateway.ecash_send(fid.hex, 1_000, "no spaces allowed")
    assert await _balance(env, fid) == Msat(99_000)


@pytest.mark.parametrize("crash_at", ["prepare", "complete"])
async def test_a_crashed_ecash_send_without_request_id_gives_its_notes_back(
    env: Env, monkeypatch: pytest.MonkeyPatch, crash_at: str
) -> None:
    fed = await env.federation("volatile", (1, 2), fee=10)
    await env.gateway.federations.connect(fed.invite_code)
    fid = FederationId(fed.federation_id)
    funder = await env.wallet(fed, "funder")
    await funder.faucet(200_000)
    await env.gateway.ecash_receive(fid.hex, await funder.send_ecash(100_000))
    funded = await _balance(env, fid)  # 100 000 - one reissue fee
    real = getattr(NoteWallet, crash_at)

    async def crash(self: NoteWallet, *args: Any, **kwargs: Any) -> Any:
        if crash_at == "prepare":
            await real(self, *args, **kwargs)
        raise Crash(f"died at {crash_at}")  # the notes string never reached the operator

    monkeypatch.setattr(NoteWallet, crash_at, crash)
    with contextlib.suppress(Crash):
        await env.gateway.ecash_send(fid.hex, 5_000)
    monkeypatch.undo()
    await env.restart_gateway()
    # Nobody can retry a send without request_id: its notes come back, minus what the
    # federation charged (prepare: one conflicting reissue; complete: the send, then a reissue).
    fees = 10 if crash_at == "prepare" else 20

    async def given_back() -> bool:
        return await _balance(env, fid) == funded - Msat(fees)

    await wait_until(given_back, timeout=15.0)
    client = env.gateway.federations.client(fid)
    assert await client.resume_operations() == 0  # type: ignore[attr-defined]
    user: Wallet = await env.wallet(fed, "payee")
    notes = await env.gateway.ecash_send(fid.hex, (funded - Msat(fees)).value - 10, "all")
    assert await user.receive_ecash(str(notes["notes"])) == (funded - Msat(fees)).value - 20  # all real
