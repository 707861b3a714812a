"""`fedimint-migrate`: gateway G moves its own ecash from federation A to B by exchanging it with
peer gateway P, which serves both. Two in-process gateways on live devfed federations."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from contrib.devfed.server import RunningFederation
from fedimint_gw.domain.amount import FeeSchedule, Msat
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.errors import InsufficientFunds, InvalidInput, NotFound
from fedimint_gw.peer.client import PeerClient
from fedimint_gw.peer.errors import PeerRefused
from fedimint_gw.services.liquidity.exchange import ExchangeService
from fedimint_gw.store import payments as pay_repo
from tests.e2e.conftest import Env, wait_until
from tests.e2e.helpers import Crash

PAIR_FEE = FeeSchedule(1000, 2000)  # what P charges for A -> B


async def _balance(e: Env, fed: RunningFederation) -> int:
    return (await e.gateway.federations.client(FederationId(fed.federation_id)).balance()).value


async def _setup(
    g: Env,
    p: Env,
    majors: tuple[int, int] = (1, 2),
    credit: int = 1_000_000,
    p_liquidity: int = 400_000,
    tx_fee: int = 0,
) -> tuple[RunningFederation, RunningFederation]:
    """Federations A and B, both gateways in both; G holds A ecash, P holds B ecash; linked."""
    fed_a = await g.federation(f"a{majors[0]}{majors[1]}", (majors[0],), fee=tx_fee)
    fed_b = await g.federation(f"b{majors[0]}{majors[1]}", (majors[1],), fee=tx_fee)
    for fed in (fed_a, fed_b):
        async with p.session.post(f"{fed.admin_url}/admin/gateways", json={"url": p.api_url}) as r:
            r.raise_for_status()
        for e in (g, p):
            await e.gateway.federations.connect(fed.invite_code)
    await _fund(g, fed_a, 400_000, tx_fee)
    if p_liquidity:
        await _fund(p, fed_b, p_liquidity, tx_fee)
    await p.gateway.set_fees(fed_a.federation_id, PAIR_FEE.base_msat, PAIR_FEE.ppm, fed_b.federation_id)
    assert (await g.gateway.peer_add(p.node.node_id, p.api_url, credit))["status"] == "pending"
    assert (await p.gateway.peer_add(g.node.node_id, g.api_url, 1_000_000))["status"] == "active"
    await g.gateway.peers.hello(p.node.node_id)  # G learns P's announcement (both federations)
    return fed_a, fed_b


async def _fund(e: Env, fed: RunningFederation, amount: int, tx_fee: int) -> None:
    """Give the gateway `amount` of ecash (the wallet pays the transaction fees on top)."""
    if not tx_fee:
        await e.fund_gateway(fed, amount)
        return
    w = await e.wallet(fed, f"funder-{fed.federation_id[:6]}")
    await w.faucet(amount + 2 * tx_fee)
    notes = await w.send_ecash(amount + tx_fee)
    await e.gateway.federations.client(FederationId(fed.federation_id)).receive_ecash(notes)


async def _payments(e: Env) -> list[dict[str, Any]]:
    return [p for p in (await e.gateway.payments(None, None, 50, None))["payments"] if p["kind"] == "migrate"]


@pytest.mark.parametrize("majors", [(1, 1), (1, 2), (2, 1), (2, 2)])
async def test_migration_moves_the_gateways_liquidity_every_version_pair(
    env: Env, env_b: Env, majors: tuple[int, int]
) -> None:
    fed_a, fed_b = await _setup(env, env_b, majors)
    g_a, g_b, p_a, p_b = [await _balance(e, f) for e in (env, env_b) for f in (fed_a, fed_b)]

    result = await env.gateway.migrations.migrate(
        fed_a.federation_id, fed_b.federation_id, 100_000, None, None
    )

    fee = PAIR_FEE.fee(Msat(100_000)).value
    assert result["state"] == "succeeded" and result["moved_msat"] == 100_000
    assert result["received_msat"] == 100_000 - fee and result["fee_msat"] == fee
    assert await _balance(env, fed_a) == g_a - 100_000
    assert await _balance(env, fed_b) == g_b + 100_000 - fee
    assert await _balance(env_b, fed_a) == p_a + 100_000
    assert await _balance(env_b, fed_b) == p_b - (100_000 - fee)
    assert env.node.pay_calls == [] and env_b.node.pay_calls == []  # no Lightning at all
    mine = await _payments(env)
    assert mine[0]["state"] == "succeeded" and mine[0]["direction"] == "out"
    assert mine[0]["federation_id"] == fed_a.federation_id
    assert mine[0]["target_federation_id"] == fed_b.federation_id
    theirs = await _payments(env_b)
    assert theirs[0]["state"] == "succeeded" and theirs[0]["direction"] == "in"
    assert theirs[0]["fee_msat"] == fee
    summary = (await env.gateway.summary(None, None))["kinds"]["migrate"]
    assert summary["succeeded"] == 1 and summary["fees_paid_msat"] == fee
    assert (await env_b.gateway.summary(None, None))["kinds"]["migrate"]["fees_earned_msat"] == fee


async def test_value_is_conserved_up_to_the_federations_transaction_fees(env: Env, env_b: Env) -> None:
    tx = 100
    fed_a, fed_b = await _setup(env, env_b, (1, 2), tx_fee=tx)
    total_before = sum([await _balance(e, f) for e in (env, env_b) for f in (fed_a, fed_b)])
    g_a, p_a = await _balance(env, fed_a), await _balance(env_b, fed_a)

    result = await env.gateway.migrations.migrate(
        fed_a.federation_id, fed_b.federation_id, 50_000, None, None
    )

    pair = PAIR_FEE.fee(Msat(50_000)).value
    assert result["state"] == "succeeded"
    assert await _balance(env, fed_a) == g_a - 50_000 - tx  # our spend pays its transaction fee
    assert await _balance(env_b, fed_a) == p_a + 50_000 - tx  # the peer's reissue pays its own
    assert result["received_msat"] == 50_000 - pair - tx - 2 * tx
    assert result["fee_msat"] == pair + 4 * tx
    total_after = sum([await _balance(e, f) for e in (env, env_b) for f in (fed_a, fed_b)])
    assert total_after == total_before - 4 * tx  # four transactions; the pair fee only changed hands


async def test_a_large_migration_runs_in_chunks_within_the_credit_and_reports_progress(
    env: Env, env_b: Env
) -> None:
    fed_a, fed_b = await _setup(env, env_b, (2, 1), credit=100_000)
    result = await env.gateway.migrations.migrate(
        fed_a.federation_id, fed_b.federation_id, 250_000, None, 50_000
    )
    assert result["state"] == "succeeded" and result["chunks"] == 3 and result["chunks_done"] == 3
    assert result["moved_msat"] == 250_000
    # Each chunk (83 334 or 83 332 msat) stayed inside the 100 000 msat credit granted to P.
    exchanges = await _payments(env_b)
    assert len(exchanges) == 3 and all(0 < x["amount_msat"] <= 100_000 for x in exchanges)
    assert sum(x["amount_msat"] for x in exchanges) == 250_000
    progress = [m for lvl, m in env.logs if "msat moved (" in m]
    assert [m.split(": ")[1].split(" msat moved")[0] for m in progress[:3]] == [
        "83334 of 250000",
        "166668 of 250000",
        "250000 of 250000",
    ]
    assert "done, 250000 of 250000 msat moved (3/3 chunks)" in progress[-1]


async def test_without_a_peer_serving_both_federations_it_is_refused_and_nothing_changes(
    env: Env, env_b: Env
) -> None:
    fed_a = await env.federation("solo-a", (1,))
    fed_b = await env.federation("solo-b", (2,))
    for fed in (fed_a, fed_b):
        await env.gateway.federations.connect(fed.invite_code)
    await env.fund_gateway(fed_a, 100_000)
    with pytest.raises(InvalidInput, match="no active peer gateway serves both"):
        await env.gateway.migrations.migrate(fed_a.federation_id, fed_b.federation_id, 10_000, None, None)
    assert await _balance(env, fed_a) == 100_000 and await _payments(env) == []


async def test_bad_input_is_refused_clearly_and_changes_nothing(env: Env, env_b: Env) -> None:
    fed_a, fed_b = await _setup(env, env_b)
    a, b = fed_a.federation_id, fed_b.federation_id
    cases: list[tuple[tuple[Any, ...], type[Exception], str]] = [
        ((a, a, 1000, None, None), InvalidInput, "must differ"),
        ((a, b, 0, None, None), InvalidInput, "positive"),
        ((a, b, "lots", None, None), InvalidInput, "amount"),
        ((a, "00" * 32, 1000, None, None), NotFound, "has not joined"),
        ((a, b, 1_000_000, None, None), InsufficientFunds, "holds 400000 msat"),
        ((a, b, 100_000, None, 10), InvalidInput, "pass max_fee_msat=1200"),
        ((a, b, 100_000, "02" + "11" * 32, None), InvalidInput, "not an active peer"),
    ]
    for args, error, text in cases:
        with pytest.raises(error, match=text):
            await env.gateway.migrations.migrate(*args)
    # A peer reached over plain http on another host: notes are bearer money, never sent.
    async with env.gateway.db.transaction() as conn:
        await conn.execute(
            "UPDATE peers SET url = 'http://gw.example.com:3000' WHERE node_id = ?", (env_b.node.node_id,)
        )
    with pytest.raises(InvalidInput, match="plain http to another host"):
        await env.gateway.migrations.migrate(a, b, 100_000, None, None)
    assert await _balance(env, fed_a) == 400_000 and await _payments(env) == []
    assert await _payments(env_b) == []


async def test_the_peer_running_dry_midway_stops_the_migration_and_returns_our_notes(
    env: Env, env_b: Env
) -> None:
    fed_a, fed_b = await _setup(env, env_b, (1, 2), credit=100_000, p_liquidity=150_000)
    result = await env.gateway.migrations.migrate(
        fed_a.federation_id, fed_b.federation_id, 200_000, None, None
    )
    # Chunk 1 went through; for chunk 2 P lacked B ecash, refused before starting, and our
    # notes of chunk 2 were reissued into our own again.
    assert result["state"] == "failed" and result["moved_msat"] == 100_000
    assert "holds" in result["error"] and "moved 100000 of 200000 msat" in result["error"]
    assert await _balance(env, fed_a) == 300_000
    assert await _balance(env, fed_b) == 100_000 - PAIR_FEE.fee(Msat(100_000)).value


async def _crash_on_exchange(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch, delivered: bool
) -> tuple[RunningFederation, RunningFederation]:
    """Migrate 60 000 msat; the process dies at the `exchange` request, after it reached the
    peer (`delivered`: the answer with P's notes is lost) or before it was sent."""
    fed_a, fed_b = await _setup(env, env_b)
    real_call = PeerClient.call

    async def call(self: Any, link: Any, message: str, body: dict[str, Any], *a: Any) -> Any:
        if message == "exchange" and not delivered:
            raise Crash()
        answer = await real_call(self, link, message, body, *a)
        if message == "exchange":
            raise Crash()
        return answer

    monkeypatch.setattr(PeerClient, "call", call)
    with contextlib.suppress(BaseException):
        await env.gateway.migrations.migrate(fed_a.federation_id, fed_b.federation_id, 60_000, None, None)
    monkeypatch.undo()
    return fed_a, fed_b


async def test_crash_after_the_exchange_was_delivered_resumes_by_asking_the_peer(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed_a, fed_b = await _crash_on_exchange(env, env_b, monkeypatch, delivered=True)
    assert await _balance(env, fed_b) == 0  # P has given, we have not taken yet
    await env.restart_gateway()
    rec = await _finished(env)
    assert rec.state is PaymentState.SUCCEEDED and rec.data["moved_msat"] == 60_000
    assert await _balance(env, fed_a) == 340_000  # spent exactly once
    assert await _balance(env, fed_b) == 60_000 - PAIR_FEE.fee(Msat(60_000)).value


async def test_crash_before_the_exchange_was_sent_tombstones_it_and_reclaims_our_notes(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed_a, fed_b = await _crash_on_exchange(env, env_b, monkeypatch, delivered=False)
    assert await _balance(env, fed_a) == 340_000  # the chunk's notes are out, in limbo
    await env.restart_gateway()
    rec = await _finished(env)
    assert rec.state is PaymentState.REFUNDED and "cancelled" in str(rec.error)
    assert await _balance(env, fed_a) == 400_000 and await _balance(env, fed_b) == 0
    tomb = await _payments(env_b)
    assert tomb[0]["state"] == "failed" and "cancelled by the sender" in tomb[0]["error"]


async def test_the_peer_crashing_between_taking_and_giving_finishes_after_its_restart(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed_a, fed_b = await _setup(env, env_b)

    _peer_dies_before_giving(env, monkeypatch)
    result = await env.gateway.migrations.migrate(
        fed_a.federation_id, fed_b.federation_id, 60_000, None, None
    )
    assert result["state"] == "running" and result["moved_msat"] == 0
    theirs = await pay_repo.unfinished(env_b.gateway.db.conn)
    assert theirs and theirs[0].state is PaymentState.FUNDED  # P holds our A ecash, owes B
    monkeypatch.undo()
    await env_b.restart_gateway()
    rec = await _finished(env)
    assert rec.state is PaymentState.SUCCEEDED
    assert await _balance(env, fed_b) == 60_000 - PAIR_FEE.fee(Msat(60_000)).value


def _peer_dies_before_giving(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """P's exchange run dies after it took our notes, before it gives; our command answers after
    3 s with its progress and keeps running."""

    async def crash(*_a: Any, **_k: Any) -> Any:
        raise Crash()

    monkeypatch.setattr(ExchangeService, "_give", crash)
    env.gateway.migrations._wait = 3.0


async def _finished(e: Env) -> pay_repo.PaymentRecord:
    async def done() -> bool:
        recs = [
            r for r in await pay_repo.between(e.gateway.db.conn, 0, 2**40) if r.kind is PaymentKind.MIGRATE
        ]
        return bool(recs) and recs[0].state.terminal

    await wait_until(done, timeout=60)
    recs = [r for r in await pay_repo.between(e.gateway.db.conn, 0, 2**40) if r.kind is PaymentKind.MIGRATE]
    return recs[0]


async def test_the_peer_refuses_notes_it_already_received_and_notes_worth_another_amount(
    env: Env, env_b: Env
) -> None:
    fed_a, fed_b = await _setup(env, env_b)
    done = await env.gateway.migrations.migrate(fed_a.federation_id, fed_b.federation_id, 50_000, None, None)
    assert done["state"] == "succeeded"
    client = env.gateway.federations.client(FederationId(fed_a.federation_id))
    link = await env.gateway.peers.link(env_b.node.node_id)
    p_b_before = await _balance(env_b, fed_b)

    async def exchange(exchange_id: str, notes: str, amount: int) -> None:
        body = {
            "exchange_id": exchange_id,
            "from_federation": fed_a.federation_id,
            "to_federation": fed_b.federation_id,
            "amount_msat": amount,
            "fee_msat": 10_000,
            "notes": notes,
        }
        await env.gateway.peers.client.call(link, "exchange", body)

    # The same notes again, under a new exchange id: P would pay twice for them.
    chunk_id = done["migration_id"].split(":", 1)[1] + "-0"
    again = (await client.spend_ecash(Msat(50_000), f"migrate-{chunk_id}")).notes
    with pytest.raises(PeerRefused, match="already received"):
        await exchange("replay-1", again, 50_000)
    # Notes worth 20 000 msat declared as 2 000 (a lower fee on a larger amount).
    fresh = (await client.spend_ecash(Msat(20_000), "declared-low")).notes
    with pytest.raises(PeerRefused, match="hold 20000 msat, not amount_msat 2000"):
        await exchange("declared-low", fresh, 2_000)
    assert await _balance(env_b, fed_b) == p_b_before  # P gave nothing for either


async def test_a_peer_answering_with_notes_we_already_hold_is_caught_and_the_loss_reported(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed_a, fed_b = await _setup(env, env_b, credit=100_000)
    real_give = ExchangeService._give
    first: list[str] = []

    async def lying_give(self: ExchangeService, rec: Any, *a: Any) -> Any:
        if not first:
            out = await real_give(self, rec, *a)
            first.append(out.data["notes_out"])
            return out
        return await self._ctx.advance(
            rec, PaymentState.SUCCEEDED, data={"notes_out": first[0], "given_msat": 98_800}
        )

    monkeypatch.setattr(ExchangeService, "_give", lying_give)
    result = await env.gateway.migrations.migrate(
        fed_a.federation_id, fed_b.federation_id, 200_000, None, None
    )
    assert result["state"] == "failed" and "already received" in result["error"]
    assert result["moved_msat"] == 100_000 and result["lost_msat"] == 100_000
    assert await _balance(env, fed_b) == 100_000 - PAIR_FEE.fee(Msat(100_000)).value  # counted once
    assert any(lvl == "error" and "lost to peer" in m for lvl, m in env.logs)


async def test_a_peer_paying_short_stops_the_migration_after_that_chunk(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed_a, fed_b = await _setup(env, env_b, credit=100_000)

    async def stingy_give(self: ExchangeService, rec: Any, *a: Any) -> Any:
        target = FederationId(str(rec.target_federation_id))
        notes = await self._ctx.federations.client(target).spend_ecash(Msat(1_000), "stingy")
        return await self._ctx.advance(
            rec, PaymentState.SUCCEEDED, data={"notes_out": notes.notes, "given_msat": 1_000}
        )

    monkeypatch.setattr(ExchangeService, "_give", stingy_give)
    result = await env.gateway.migrations.migrate(
        fed_a.federation_id, fed_b.federation_id, 200_000, None, None
    )
    assert result["state"] == "failed" and "quoted at 98800 msat" in result["error"]
    assert result["chunks_done"] == 1 and result["received_msat"] == 1_000
    assert result["lost_msat"] == 98_800 - 1_000
    assert await _balance(env, fed_a) == 300_000  # the second chunk was never sent


async def test_only_one_migration_per_peer_runs_at_a_time_and_a_wait_shows_why(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed_a, fed_b = await _setup(env, env_b)

    _peer_dies_before_giving(env, monkeypatch)
    first = await env.gateway.migrations.migrate(fed_a.federation_id, fed_b.federation_id, 60_000, None, None)
    assert first["state"] == "running" and first["waiting"] == "the exchange is pending"
    with pytest.raises(InvalidInput, match="already running"):
        await env.gateway.migrations.migrate(fed_a.federation_id, fed_b.federation_id, 10_000, None, None)
    listed = await _payments(env)
    assert listed[0]["state"] == "paying" and listed[0]["waiting"] == "the exchange is pending"


async def test_an_unsigned_refusal_is_asked_about_not_taken_as_proof_nothing_started(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed_a, fed_b = await _setup(env, env_b)
    real_call = PeerClient.call

    async def proxy_in_between(self: Any, link: Any, message: str, body: dict[str, Any], *a: Any) -> Any:
        answer = await real_call(self, link, message, body, *a)
        if message == "exchange":  # delivered, but a proxy answers 401 without the peer's signature
            raise PeerRefused("peer refused (unauthenticated): proxy", "unauthenticated", 401, signed=False)
        return answer

    monkeypatch.setattr(PeerClient, "call", proxy_in_between)
    result = await env.gateway.migrations.migrate(
        fed_a.federation_id, fed_b.federation_id, 60_000, None, None
    )
    # Reclaiming here would find our notes spent by P: the loss a guess would have caused.
    assert result["state"] == "succeeded" and "lost_msat" not in result
    assert await _balance(env, fed_b) == 60_000 - PAIR_FEE.fee(Msat(60_000)).value
