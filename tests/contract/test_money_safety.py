"""Money safety of every adapter against faulty guardians (issue 14, findings 2 and 3).

One guardian's word decides nothing that moves money: contracts, heights and submission
outcomes need a threshold of agreeing guardians; a submission whose outcome is unknown is
made impossible before anyone is refunded. Each fault is injected over devfed's admin API.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import aiohttp
import pytest
from coincurve import PrivateKey

from contrib.devfed.codec import object_id
from contrib.devfed.contracts import ContractState, contract_view
from contrib.devfed.errors import DevfedError, ErrorCode
from contrib.devfed.server import RunningFederation
from contrib.devfed.wallet import Wallet
from fedimint_gw.clock import SystemClock
from fedimint_gw.domain.amount import Msat
from fedimint_gw.errors import FederationRejected, FederationUnreachable, NotFound
from fedimint_gw.federation.client import IncomingState
from fedimint_gw.federation.devfed.notes_format import decode_notes
from fedimint_gw.federation.notes import NoteWallet
from fedimint_gw.store.db import Database
from tests.contract.conftest import Gateway, admin, balance_becomes, fund_gateway, set_fault
from tests.contract.test_adapters import Crash, CrashingWallet, new_receive, outgoing


async def fault(session: aiohttp.ClientSession, fed: RunningFederation, peer: int, **body: Any) -> Any:
    """Set guardian `peer`'s fault (the admin answer, with what a lifted fault flushed)."""
    return await admin(session, fed, f"/admin/guardians/{peer}/fault", body)


def contract_exists(fed: RunningFederation, contract_id: str) -> bool:
    try:
        fed.federation.sequencer.contract_body(contract_id)
    except DevfedError as exc:
        assert exc.code is ErrorCode.UNKNOWN_CONTRACT
        return False
    return True


async def assert_ecash_is_good(gateway: Gateway, user: Wallet, amount: int) -> None:
    """The gateway's balance is `amount` and all of it is real: the user can receive it."""
    client = gateway.client
    await balance_becomes(client, amount)  # a funding's change notes may be finished just after
    notes = await client.spend_ecash(Msat(amount), f"check-{os.urandom(4).hex()}")
    assert await user.receive_ecash(notes.notes) == amount


# ---- finding 2: an unknown outcome is made impossible before giving up ----------------------
async def test_abandon_makes_a_funding_still_in_flight_impossible(
    gateway: Gateway, user: Wallet, fed: RunningFederation, session: aiohttp.ClientSession
) -> None:
    client = gateway.client
    await fund_gateway(user, client, 100_000)
    receive = await new_receive(gateway, user, 25_000)
    # Guardian 0 takes the submission into consensus and answers nothing; the others are down.
    await fault(session, fed, 0, mode="dropping", defer=True)
    for peer in (1, 2, 3):
        await set_fault(session, fed, peer, "offline")
    with pytest.raises(FederationUnreachable):
        await client.fund_incoming(receive.request, "lost-answer")
    for peer in (1, 2, 3):
        await set_fault(session, fed, peer, "honest")
    # Every guardian still says "unknown transaction": no proof that it will never land.
    assert await client.abandon_funding("lost-answer") is True
    assert await client.abandon_funding("lost-answer") is True  # settled: asked again, same answer
    lifted = await fault(session, fed, 0, mode="honest")
    # What it held lands now: the funding is refused (its notes are spent), then the conflict's replay.
    assert [r.get("error", {}).get("name") for r in lifted["flushed"]] == ["double_spend", None]
    assert not contract_exists(fed, receive.request.contract_id)
    with pytest.raises(FederationRejected, match="abandoned"):
        await client.fund_incoming(receive.request, "lost-answer")  # never resubmitted
    await assert_ecash_is_good(gateway, user, 100_000)


async def test_abandon_finishes_a_funding_that_landed(
    gateway: Gateway, user: Wallet, fed: RunningFederation, session: aiohttp.ClientSession
) -> None:
    client = gateway.client
    await fund_gateway(user, client, 100_000)
    receive = await new_receive(gateway, user, 25_000)
    for peer in range(4):  # every guardian processes the funding and loses its answer
        await fault(session, fed, peer, mode="dropping")
    with pytest.raises(FederationUnreachable):
        await client.fund_incoming(receive.request, "landed")
    for peer in range(4):
        await set_fault(session, fed, peer, "honest")
    assert await client.abandon_funding("landed") is False
    assert contract_exists(fed, receive.request.contract_id)
    assert await client.fund_incoming(receive.request, "landed") == receive.request.contract_id
    outcome = await client.await_preimage(receive.request.contract_id, 10.0)
    assert outcome.state is IncomingState.PREIMAGE and outcome.preimage == receive.preimage
    await assert_ecash_is_good(gateway, user, 75_000)


async def test_abandon_of_a_funding_holding_a_note_spent_elsewhere(
    gateway: Gateway, user: Wallet, fed: RunningFederation, session: aiohttp.ClientSession
) -> None:
    """A funding that spends a note someone else already spent can never land: the conflicting
    reissue's double-spend refusal names another spender, and that settles it."""
    client = gateway.client
    await fund_gateway(user, client, 1_000)
    ecash = await user.send_ecash(3_072)  # 2048 + 1024 msat
    _, dead = decode_notes(ecash)
    await gateway.wallet.add_notes(dead)  # the gateway holds them...
    await user.receive_ecash(ecash)  # ...but they were spent elsewhere first
    receive = await new_receive(gateway, user, 4_000)  # needs the dead notes too
    for peer in range(4):
        await fault(session, fed, peer, mode="dropping", discard=True)
    with pytest.raises(FederationUnreachable):
        await client.fund_incoming(receive.request, "dead-note")
    for peer in range(4):
        await set_fault(session, fed, peer, "honest")
    assert await client.abandon_funding("dead-note") is True
    assert not contract_exists(fed, receive.request.contract_id)
    balance = (await client.balance()).value
    assert 1_000 <= balance < 4_072  # the note named spent is retired, the others released
    with pytest.raises(FederationRejected):
        await client.fund_incoming(receive.request, "dead-note")  # never resubmitted


async def test_resume_leaves_a_crashed_funding_to_its_flow(
    gateway: Gateway, user: Wallet, db: Database, fed: RunningFederation
) -> None:
    """A funding cut short by a crash is never resubmitted behind its flow's back: the receive's
    HTLC may be gone, and then the flow abandons it rather than pay the receiver for nothing."""
    await fund_gateway(user, gateway.client, 100_000)
    receive = await new_receive(gateway, user, 25_000)
    with pytest.raises(Crash):
        await gateway.rebuilt(CrashingWallet(db, fed.federation_id, "prepare")).fund_incoming(
            receive.request, "orphan"
        )
    restarted = gateway.rebuilt(NoteWallet(db, fed.federation_id, SystemClock()))
    assert await restarted.resume_operations() == 0  # type: ignore[attr-defined]
    assert not contract_exists(fed, receive.request.contract_id)
    assert await restarted.abandon_funding("orphan") is True
    assert await restarted.balance() == Msat(100_000)


# ---- finding 3: a threshold of agreeing guardians decides -------------------------------------
async def test_a_lying_guardian_cannot_make_up_a_contract(
    gateway: Gateway, user: Wallet, fed: RunningFederation, session: aiohttp.ClientSession
) -> None:
    client = gateway.client
    height = await client.block_height()
    preimage = os.urandom(32)
    body: dict[str, object] = {  # locked to the gateway, never funded
        "kind": "outgoing_contract",
        "payment_hash": hashlib.sha256(preimage).hexdigest(),
        "amount_msat": 500_000,
        "gateway_pubkey": client.gateway_pubkey,
        "refund_pubkey": PrivateKey().public_key.format().hex(),
        "timelock_height": height + 200,
    }
    cid = object_id(body)
    lie = contract_view(cid, body, ContractState.FUNDED, {"funded_txid": "00" * 32})
    await fault(session, fed, 0, mode="lying", contracts={cid: lie})
    with pytest.raises(NotFound):
        await client.verify_outgoing(cid)
    with pytest.raises(NotFound):
        await client.claim_outgoing(cid, preimage)
    real, real_preimage = await outgoing(user, gateway, 9_000)
    assert (await client.verify_outgoing(real)).amount == Msat(9_000)  # the honest ones still decide
    assert await client.claim_outgoing(real, real_preimage) == Msat(9_000)


async def test_a_lying_guardian_cannot_move_the_block_height(
    gateway: Gateway, fed: RunningFederation, session: aiohttp.ClientSession
) -> None:
    honest = await fed.federation.chain.height()
    await fault(session, fed, 0, mode="lying", height_offset=-100)
    assert await gateway.client.block_height() == honest
    assert (await gateway.client.info()).block_height == honest


async def test_a_guardian_refusing_a_submission_it_processed_is_outvoted(
    gateway: Gateway, user: Wallet, fed: RunningFederation, session: aiohttp.ClientSession
) -> None:
    client = gateway.client
    await fund_gateway(user, client, 100_000)
    receive = await new_receive(gateway, user, 25_000)
    await fault(session, fed, 0, mode="lying", refuse_submissions=True)
    assert await client.fund_incoming(receive.request, "lied-to") == receive.request.contract_id
    outcome = await client.await_preimage(receive.request.contract_id, 10.0)
    assert outcome.preimage == receive.preimage
    await set_fault(session, fed, 0, "honest")
    await assert_ecash_is_good(gateway, user, 75_000)


async def test_a_withholding_guardian_does_not_hold_up_the_preimage(
    gateway: Gateway, user: Wallet, fed: RunningFederation, session: aiohttp.ClientSession
) -> None:
    client = gateway.client
    await fund_gateway(user, client, 100_000)
    await fault(session, fed, 0, mode="withholding")
    receive = await new_receive(gateway, user, 25_000)
    cid = await client.fund_incoming(receive.request, "withheld")
    outcome = await client.await_preimage(cid, 5.0)
    assert outcome.state is IncomingState.PREIMAGE and outcome.preimage == receive.preimage


async def test_a_guardian_that_stalls_is_not_waited_for(
    gateway: Gateway, user: Wallet, fed: RunningFederation, session: aiohttp.ClientSession
) -> None:
    client = gateway.client
    await fund_gateway(user, client, 50_000)
    receive = await new_receive(gateway, user, 20_000)
    await set_fault(session, fed, 0, "slow", delay_ms=5_000)  # far beyond the request timeout
    cid = await client.fund_incoming(receive.request, "stalled")
    assert (await client.await_preimage(cid, 10.0)).preimage == receive.preimage
    await set_fault(session, fed, 0, "honest")
    await assert_ecash_is_good(gateway, user, 30_000)
