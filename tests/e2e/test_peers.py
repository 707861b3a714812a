"""Peer gateways: forwards between two (or, through a router, three) in-process gateways.

Each gateway has its own fake node, database, API port and devfed federations; the fake nodes
share one `payees` map, so a Lightning payment between them (fallbacks, settlements) can succeed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from typing import Any

import pytest

from contrib.devfed import wallet_ln
from contrib.devfed.server import RunningFederation
from contrib.devfed.wallet import Wallet
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.peer import wire
from fedimint_gw.store import payments as pay_repo
from fedimint_gw.store import peers as peer_repo
from tests.e2e.conftest import Env, wait_until
from tests.e2e.helpers import Crash, claim_receive, default_fee


async def _link(a: Env, b: Env, a_grants: int = 10_000_000, b_grants: int = 10_000_000) -> None:
    """Both operators add each other (A first: pending until B adds A, then active on both)."""
    first = await a.gateway.peer_add(b.node.node_id, b.api_url, a_grants)
    assert first["status"] == "pending"
    second = await b.gateway.peer_add(a.node.node_id, a.api_url, b_grants)
    assert second["status"] == "active"
    listed = (await a.gateway.peer_list())["peers"]
    assert listed[0]["status"] == "active" and listed[0]["peer_credit_limit_msat"] == b_grants


async def _joined(e: Env, name: str, major: int) -> RunningFederation:
    fed = await e.federation(name, (major,))
    await e.gateway.federations.connect(fed.invite_code)
    return fed


async def _receive(e: Env, fed: RunningFederation, user: Wallet, amount: int) -> wallet_ln.Receive:
    if user.client.major == 1:
        client = e.gateway.federations.client(FederationId(fed.federation_id))
        return await wallet_ln.receive_v1(user, client.gateway_pubkey, amount, "peer target")
    return await wallet_ln.receive_v2(user, e.api_url, amount, "peer target")


async def _pay(e: Env, fed: RunningFederation, user: Wallet, invoice: str, fee: int) -> dict[str, Any]:
    client = e.gateway.federations.client(FederationId(fed.federation_id))
    result = await wallet_ln.pay(user, invoice, e.api_url, client.gateway_pubkey, fee)
    await e.settled(str(result["contract_id"]))
    return result


async def _pay_until_crash(
    e: Env, fed: RunningFederation, user: Wallet, invoice: str, fee: int, crashes: list[str]
) -> None:
    """Pay as far as the gateway gets before it "dies" (a Crash appended to `crashes`): the
    wallet's request then never gets an answer, so it is dropped instead of waiting for the
    HTTP timeout."""
    paying = asyncio.create_task(_pay(e, fed, user, invoice, fee))

    async def dead() -> bool:
        return bool(crashes) or paying.done()

    await wait_until(dead)
    paying.cancel()
    with contextlib.suppress(BaseException):
        await paying


async def _balance(e: Env, peer: Env) -> int:
    return await peer_repo.balance(e.gateway.db.conn, peer.node.node_id)


async def _setup(
    a: Env, b: Env, src_major: int, dst_major: int, b_grants: int = 10_000_000
) -> tuple[RunningFederation, RunningFederation, Wallet, Wallet]:
    src = await _joined(a, f"a{src_major}{dst_major}", src_major)
    dst = await _joined(b, f"b{src_major}{dst_major}", dst_major)
    await b.fund_gateway(dst, 300_000)
    await _link(a, b, b_grants=b_grants)
    sender = await a.wallet(src, "sender")
    receiver = await b.wallet(dst, "receiver")
    await sender.faucet(200_000)
    return src, dst, sender, receiver


@pytest.mark.parametrize(("src_major", "dst_major"), [(1, 1), (1, 2), (2, 1), (2, 2)])
async def test_forward_between_gateways_every_version_pair(
    env: Env, env_b: Env, src_major: int, dst_major: int
) -> None:
    src, dst, sender, receiver = await _setup(env, env_b, src_major, dst_major)
    receive = await _receive(env_b, dst, receiver, 50_000)
    result = await _pay(env, src, sender, receive.bolt11, 2 * default_fee(50_000))
    assert hashlib.sha256(bytes.fromhex(str(result["preimage"]))).hexdigest() == receive.payment_hash
    assert env.node.pay_calls == [] and env_b.node.pay_calls == []  # no Lightning anywhere
    claimed = await claim_receive(receiver, receive)
    assert claimed == (50_000 if dst_major == 1 else 50_000 - default_fee(50_000))

    forwarded = 50_000 + (default_fee(50_000) if dst_major == 1 else 0)  # v1: plus the route hint's fee
    assert await _balance(env, env_b) == -forwarded and await _balance(env_b, env) == forwarded
    rec = await pay_repo.get(env.gateway.db.conn, f"send:{result['contract_id']}")
    assert rec is not None and rec.kind is PaymentKind.PEER and rec.state is PaymentState.SUCCEEDED
    listed = (await env_b.gateway.payments(None, None, 10, None))["payments"]
    assert any(p["kind"] == "peer" and p["state"] == "succeeded" for p in listed)
    assert (await env.gateway.peers.check_ledger(env_b.node.node_id))["agreed"] is True


async def test_forward_over_the_credit_line_goes_over_lightning(env: Env, env_b: Env) -> None:
    src, dst, sender, receiver = await _setup(env, env_b, 2, 2, b_grants=10_000)
    receive = await _receive(env_b, dst, receiver, 50_000)
    result = await _pay(env, src, sender, receive.bolt11, 2 * default_fee(50_000))
    assert receive.payment_hash in env.node.pay_calls  # the Lightning path was taken
    rec = await pay_repo.get(env.gateway.db.conn, f"send:{result['contract_id']}")
    assert rec is not None and rec.kind is PaymentKind.SEND
    assert await _balance(env, env_b) == 0


async def test_peer_down_falls_back_to_lightning_and_refunds_when_that_fails(env: Env, env_b: Env) -> None:
    src, dst, sender, receiver = await _setup(env, env_b, 1, 2)
    receive = await _receive(env_b, dst, receiver, 20_000)
    await env_b.gateway.stop()  # the peer is gone; its node is unreachable over "Lightning" too
    env.node.payees.pop(receive.payment_hash, None)
    result = await _pay(env, src, sender, receive.bolt11, 2 * default_fee(20_000))
    assert "preimage" not in result and sender.balance_msat() == 200_000  # refunded at once
    rec = await pay_repo.get(env.gateway.db.conn, f"send:{result['contract_id']}")
    assert rec is not None and rec.kind is PaymentKind.SEND and rec.state is PaymentState.REFUNDED
    assert "unreachable" in str(rec.data.get("peer_fallback"))
    assert receive.payment_hash in env.node.pay_calls
    await env_b.gateway.start()  # so the fixture can stop it


async def test_tampered_replayed_and_unsigned_requests_are_refused_and_logged(env: Env, env_b: Env) -> None:
    await _link(env, env_b)
    peers = env.gateway.peers
    url = f"{env_b.api_url}/v1/peer/ledger"
    raw = json.dumps({"statement": await peers.statement(env_b.node.node_id)}).encode()
    headers, _ = wire.sign_request(
        peers.key, "/v1/peer/ledger", env.node.node_id, env_b.node.node_id, raw, env.gateway.clock.now()
    )

    async def post(body: bytes, hdrs: dict[str, str]) -> tuple[int, str]:
        async with env.session.post(url, data=body, headers=hdrs) as r:
            return r.status, (await r.json())["error"]["peer_code"] if r.status >= 400 else "ok"

    tampered = raw.replace(b"balance_msat", b"balance_msaT")
    assert await post(tampered, headers) == (401, "bad_signature")
    assert await post(raw, {}) == (401, "unauthenticated")
    assert (await post(raw, headers))[0] == 200
    assert await post(raw, headers) == (401, "replayed")
    stale, _ = wire.sign_request(
        peers.key, "/v1/peer/ledger", env.node.node_id, env_b.node.node_id, raw, env.gateway.clock.now() - 600
    )
    assert await post(raw, stale) == (401, "stale")
    warnings = [m for lvl, m in env_b.logs if lvl == "warn" and "refused" in m]
    assert {"bad_signature", "unauthenticated", "replayed", "stale"} <= {
        code
        for m in warnings
        for code in ("bad_signature", "unauthenticated", "replayed", "stale")
        if code in m
    }


async def test_unknown_node_and_bad_binding_are_refused(env: Env, env_b: Env) -> None:
    # B never added A: A's hello only introduces it, and forwards are refused.
    added = await env.gateway.peer_add(env_b.node.node_id, env_b.api_url, 1000)
    assert added["status"] == "pending"
    assert await peer_repo.get(env_b.gateway.db.conn, env.node.node_id) is None  # a stranger: no row
    listed = await env_b.gateway.peer_list()
    assert listed["peers"] == [] and [i["node_id"] for i in listed["introductions"]] == [env.node.node_id]
    # A hello whose binding is signed by another node is refused.
    from tests.support.fake_node import FakeNode

    impostor = FakeNode()
    body = {
        "node_id": env.node.node_id,
        "peer_key": env.gateway.peers.key.public_hex,
        "binding": await impostor.sign_message(
            wire.binding_text(env.gateway.peers.key.public_hex, env.node.node_id)
        ),
        "versions": {"min": 1, "max": 1},
    }
    raw = json.dumps(body).encode()
    headers, _ = wire.sign_request(
        env.gateway.peers.key,
        "/v1/peer/hello",
        env.node.node_id,
        env_b.node.node_id,
        raw,
        env.gateway.clock.now(),
    )
    async with env.session.post(f"{env_b.api_url}/v1/peer/hello", data=raw, headers=headers) as r:
        assert r.status == 401 and (await r.json())["error"]["peer_code"] == "bad_signature"


async def test_crash_after_the_forward_was_delivered_resumes_by_asking_the_peer(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, dst, sender, receiver = await _setup(env, env_b, 2, 1)
    receive = await _receive(env_b, dst, receiver, 20_000)
    from fedimint_gw.peer.client import PeerClient

    real_call = PeerClient.call
    crashed: list[str] = []

    async def call_then_crash(self: Any, link: Any, message: str, body: dict[str, Any], *a: Any) -> Any:
        answer = await real_call(self, link, message, body, *a)
        if message == "forward" and not crashed:
            crashed.append(str(body["forward_id"]))
            raise Crash()  # the answer (with the preimage) is lost with the process
        return answer

    monkeypatch.setattr(PeerClient, "call", call_then_crash)
    await _pay_until_crash(env, src, sender, receive.bolt11, 2 * default_fee(20_000), crashed)
    assert crashed
    monkeypatch.undo()
    await env.restart_gateway()

    async def finished() -> bool:
        recs = await pay_repo.by_hash(env.gateway.db.conn, receive.payment_hash, PaymentKind.PEER)
        return bool(recs) and recs[0].state.terminal

    await wait_until(finished)
    rec = (await pay_repo.by_hash(env.gateway.db.conn, receive.payment_hash, PaymentKind.PEER))[0]
    assert rec.state is PaymentState.SUCCEEDED and env.node.pay_calls == []
    assert await claim_receive(receiver, receive) == 20_000
    gw_src = await env.gateway.federations.client(FederationId(src.federation_id)).balance()
    assert gw_src.value == 20_000 + 2 * default_fee(20_000)  # claimed exactly once
    assert await _balance(env, env_b) == -(20_000 + default_fee(20_000))


async def test_crash_before_sending_cancels_the_forward_and_pays_over_lightning(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    src, dst, sender, receiver = await _setup(env, env_b, 1, 1)
    receive = await _receive(env_b, dst, receiver, 20_000)
    from fedimint_gw.peer.client import PeerClient

    crashed: list[str] = []

    async def crash(self: Any, *a: Any) -> Any:
        crashed.append("call")
        raise Crash()

    monkeypatch.setattr(PeerClient, "call", crash)
    await _pay_until_crash(env, src, sender, receive.bolt11, 2 * default_fee(20_000), crashed)
    monkeypatch.undo()
    await env.restart_gateway()

    async def finished() -> bool:
        recs = await pay_repo.by_hash(env.gateway.db.conn, receive.payment_hash, PaymentKind.SEND)
        return bool(recs) and recs[0].state.terminal

    await wait_until(finished)
    # B tombstoned the forward id it never saw; A paid over Lightning (which failed): refunded.
    tomb = [
        r for r in (await env_b.gateway.payments(None, None, 10, None))["payments"] if r["kind"] == "peer"
    ]
    assert tomb and tomb[0]["state"] == "failed" and "cancelled" in tomb[0]["error"]
    assert receive.payment_hash in env.node.pay_calls
    assert await _balance(env_b, env) == 0


async def test_ledger_mismatch_is_detected_and_reported_on_both_sides(env: Env, env_b: Env) -> None:
    src, dst, sender, receiver = await _setup(env, env_b, 2, 2)
    receive = await _receive(env_b, dst, receiver, 30_000)
    await _pay(env, src, sender, receive.bolt11, 2 * default_fee(30_000))
    async with env_b.gateway.db.transaction() as conn:  # B "forgets" the forward
        await conn.execute("DELETE FROM peer_ledger")
    result = await env.gateway.peers.check_ledger(env_b.node.node_id)
    assert result["agreed"] is False and "missing at the peer" in result["detail"]
    for e in (env, env_b):
        peer = (await e.gateway.peer_list())["peers"][0]
        assert peer["ledger_status"] == "mismatch"
        assert any(lvl == "error" and "LEDGER MISMATCH" in m for lvl, m in e.logs)


async def test_settlement_over_lightning_zeroes_the_ledger(env: Env, env_b: Env) -> None:
    src, dst, sender, receiver = await _setup(env, env_b, 1, 2)
    receive = await _receive(env_b, dst, receiver, 40_000)
    await _pay(env, src, sender, receive.bolt11, 2 * default_fee(40_000))
    assert await _balance(env, env_b) == -40_000
    settled = await env.gateway.peer_settle(env_b.node.node_id, None)
    assert settled["state"] == "done" and settled["amount_msat"] == 40_000 and settled["balance_msat"] == 0
    assert await _balance(env_b, env) == 0
    assert len(env.node.pay_calls) == 1  # the settlement is one Lightning payment to B's node
    assert (await env.gateway.peers.check_ledger(env_b.node.node_id))["agreed"] is True
    with pytest.raises(Exception, match="nothing to settle"):
        await env.gateway.peer_settle(env_b.node.node_id, None)


async def test_debt_past_half_the_credit_line_settles_automatically(env: Env, env_b: Env) -> None:
    src, dst, sender, receiver = await _setup(env, env_b, 2, 2, b_grants=100_000)
    receive = await _receive(env_b, dst, receiver, 60_000)
    await _pay(env, src, sender, receive.bolt11, 2 * default_fee(60_000))

    async def settled() -> bool:
        return await _balance(env, env_b) == 0 and await _balance(env_b, env) == 0

    await wait_until(settled)


async def test_router_forwards_between_gateways_that_are_not_linked(env: Env, env_b: Env, env_c: Env) -> None:
    router = env_c
    src = await _joined(env, "src", 1)
    dst = await _joined(env_b, "dst", 2)
    await env_b.fund_gateway(dst, 100_000)
    await _link(router, env_b)  # the router's links first, so it announces B to A
    await _link(env, router)
    sender, receiver = await env.wallet(src, "s"), await env_b.wallet(dst, "r")
    await sender.faucet(100_000)
    receive = await _receive(env_b, dst, receiver, 25_000)
    result = await _pay(env, src, sender, receive.bolt11, 2 * default_fee(25_000))
    assert "preimage" in result
    assert env.node.pay_calls == env_b.node.pay_calls == router.node.pay_calls == []
    assert await claim_receive(receiver, receive) == 25_000 - default_fee(25_000)
    assert await _balance(env, router) == -25_000 and await _balance(router, env) == 25_000
    assert await _balance(router, env_b) == -25_000 and await _balance(env_b, router) == 25_000
    # The router forwarded with its own deadline, earlier than the one it received.
    from fedimint_gw.services.peering.forward_sender import ROUTE_MARGIN

    [inbound] = await _forwards(router, "in")
    [outbound] = [r for r in await _forwards(router, "out") if r.payment_id.startswith("peer-out:")]
    assert outbound.data["deadline"] == inbound.data["deadline"] - ROUTE_MARGIN
    [final] = await _forwards(env_b, "in")
    assert final.data["deadline"] == outbound.data["deadline"]


@pytest.mark.parametrize(
    ("peer_code", "signed"), [("unauthenticated", False), ("replayed", True), ("stale", True)]
)
async def test_a_refusal_after_delivery_is_asked_about_not_taken_as_never_started(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch, peer_code: str, signed: bool
) -> None:
    """The forward reached B (and B paid its user), but the answer A sees is a refusal: an unsigned
    401 from something in between, or B's signed refusal of a second delivery of the same request
    (`replayed` to A's own fresh nonce). Only `forward_status` can tell: A must not pay again."""
    src, dst, sender, receiver = await _setup(env, env_b, 2, 1)
    receive = await _receive(env_b, dst, receiver, 20_000)
    from fedimint_gw.peer.client import PeerClient
    from fedimint_gw.peer.errors import PeerRefused

    real_call = PeerClient.call

    async def delivered_then_refused(
        self: Any, link: Any, message: str, body: dict[str, Any], *a: Any
    ) -> Any:
        answer = await real_call(self, link, message, body, *a)
        if message == "forward":
            raise PeerRefused(f"peer refused ({peer_code}): again", peer_code, 401, signed=signed)
        return answer

    monkeypatch.setattr(PeerClient, "call", delivered_then_refused)
    result = await _pay(env, src, sender, receive.bolt11, 2 * default_fee(20_000))
    assert hashlib.sha256(bytes.fromhex(str(result["preimage"]))).hexdigest() == receive.payment_hash
    assert env.node.pay_calls == []  # never paid a second time over Lightning
    assert await claim_receive(receiver, receive) == 20_000
    assert await _balance(env, env_b) == -(20_000 + default_fee(20_000)) == -await _balance(env_b, env)


async def _three_forwards_at_once(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch, a_believes: int | None = None
) -> list[str]:
    """B grants A 60,000 msat (A believes `a_believes` if given). Three users pay three 40,000 msat
    v1 invoices at B at once (42,120 msat forwards, with the route hint's fee); A's forwards leave
    only once all three sends are planned. Returns the payment hashes."""
    src = await _joined(env, "a-credit", 2)
    dst = await _joined(env_b, "b-credit", 1)
    await env_b.fund_gateway(dst, 300_000)
    await _link(env, env_b, b_grants=60_000)
    if a_believes is not None:
        async with env.gateway.db.transaction() as conn:
            await conn.execute("UPDATE peers SET peer_credit_limit_msat = ?", (a_believes,))
    receiver = await env_b.wallet(dst, "receiver")
    receives = [await _receive(env_b, dst, receiver, 40_000) for _ in range(3)]
    senders = []
    for i in range(3):
        w = await env.wallet(src, f"sender{i}")
        await w.faucet(100_000)
        senders.append(w)
    from fedimint_gw.peer.client import PeerClient

    real_call = PeerClient.call

    async def planned() -> bool:
        async with env.gateway.db.conn.execute(
            "SELECT COUNT(*) FROM payments WHERE payment_id LIKE 'send:%'"
        ) as cur:
            row = await cur.fetchone()
        return row is not None and row[0] == 3

    async def gated(self: Any, link: Any, message: str, body: dict[str, Any], *a: Any) -> Any:
        if message == "forward":
            await wait_until(planned)
        return await real_call(self, link, message, body, *a)

    monkeypatch.setattr(PeerClient, "call", gated)
    import asyncio

    await asyncio.gather(
        *(
            _pay(env, src, w, r.bolt11, 2 * default_fee(40_000))
            for w, r in zip(senders, receives, strict=True)
        )
    )
    return [r.payment_hash for r in receives]


async def _forwards(e: Env, direction: str) -> list[pay_repo.PaymentRecord]:
    recs = await pay_repo.unfinished(e.gateway.db.conn)  # none may be left unfinished
    assert recs == []
    async with e.gateway.db.conn.execute("SELECT payment_id FROM payments WHERE kind = 'peer'") as cur:
        ids = [str(r[0]) for r in await cur.fetchall()]
    out = [await pay_repo.get(e.gateway.db.conn, i) for i in ids]
    return [r for r in out if r is not None and r.data.get("direction", "out") == direction]


async def test_concurrent_forwards_never_exceed_the_credit_line_the_sender_checks(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashes = await _three_forwards_at_once(env, env_b, monkeypatch)
    forwarded = await _forwards(env, "out")
    assert len(forwarded) == 1 and forwarded[0].state is PaymentState.SUCCEEDED
    over_lightning = {h for h in env.node.pay_calls if h in hashes}  # (the rest: the settlement)
    assert over_lightning == set(hashes) - {forwarded[0].payment_hash}
    assert len(await _forwards(env_b, "in")) == 1


async def test_concurrent_forwards_never_exceed_the_credit_line_the_receiver_grants(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    hashes = await _three_forwards_at_once(env, env_b, monkeypatch, a_believes=10_000_000)  # > B grants
    accepted = await _forwards(env_b, "in")
    assert len(accepted) == 1 and accepted[0].state is PaymentState.SUCCEEDED
    over_lightning = {h for h in env.node.pay_calls if h in hashes}  # the two B refused
    assert over_lightning == set(hashes) - {accepted[0].payment_hash}


async def _in_debt(env: Env, env_b: Env, amount: int, b_grants: int = 10_000_000) -> None:
    """A owes B `amount` msat after one v2 forward."""
    src, dst, sender, receiver = await _setup(env, env_b, 2, 2, b_grants=b_grants)
    receive = await _receive(env_b, dst, receiver, amount)
    await _pay(env, src, sender, receive.bolt11, 2 * default_fee(amount))
    assert await _balance(env, env_b) == -amount


async def test_two_settle_commands_at_once_pay_the_debt_once(env: Env, env_b: Env) -> None:
    import asyncio

    await _in_debt(env, env_b, 40_000)
    first, second = await asyncio.gather(
        env.gateway.peer_settle(env_b.node.node_id, None), env.gateway.peer_settle(env_b.node.node_id, None)
    )
    assert first["settlement_id"] == second["settlement_id"] and first["state"] == "done"
    assert len(env.node.pay_calls) == 1  # one Lightning payment
    assert await _balance(env, env_b) == 0 == await _balance(env_b, env)


async def test_a_settle_command_racing_the_automatic_settlement_pays_once(env: Env, env_b: Env) -> None:
    import asyncio

    await _in_debt(env, env_b, 30_000)  # under half of the 100,000 msat line: no automatic settlement
    async with env.gateway.db.transaction() as conn:  # B's line shrinks: the debt passes half of it
        await conn.execute("UPDATE peers SET peer_credit_limit_msat = 50000")
    settle = env.gateway._settle
    assert settle is not None
    _, answer = await asyncio.gather(
        settle.maybe_settle(env_b.node.node_id), env.gateway.peer_settle(env_b.node.node_id, None)
    )
    assert answer["state"] == "done" and len(env.node.pay_calls) == 1
    assert await _balance(env, env_b) == 0 == await _balance(env_b, env)
    assert len(await peer_repo.settlements(env.gateway.db.conn, env_b.node.node_id)) == 1


async def test_the_creditor_refuses_a_second_open_settlement_of_the_same_debt(env: Env, env_b: Env) -> None:
    from fedimint_gw.peer.errors import PeerRefused

    await _in_debt(env, env_b, 40_000)
    peers = env.gateway.peers
    link = await peers.link(env_b.node.node_id)
    first = await peers.client.call(link, "settle_invoice", {"settlement_id": "s-one", "amount_msat": 40_000})
    assert first["invoice"].startswith("ln")
    with pytest.raises(PeerRefused) as refused:
        await peers.client.call(link, "settle_invoice", {"settlement_id": "s-two", "amount_msat": 40_000})
    assert refused.value.peer_code == "refused" and "already invoiced" in refused.value.message
    again = await peers.client.call(link, "settle_invoice", {"settlement_id": "s-one", "amount_msat": 40_000})
    assert again["invoice"] == first["invoice"]  # the same id still gets its invoice
    # An invoice never reported paid stops counting after a while (its payment may have failed).
    async with env_b.gateway.db.transaction() as conn:
        await conn.execute("UPDATE peer_settlements SET created_at = created_at - 3601")
    later = await peers.client.call(link, "settle_invoice", {"settlement_id": "s-two", "amount_msat": 40_000})
    assert later["invoice"] != first["invoice"]


# ----- issue 15: hostile input and availability ---------------------------------------------------
async def _count(e: Env, table: str) -> int:
    async with e.gateway.db.conn.execute(f"SELECT COUNT(*) FROM {table}") as cur:
        row = await cur.fetchone()
    return int(row[0]) if row is not None else -1


async def test_a_flood_of_strangers_hellos_leaves_a_bounded_expiring_footprint(env: Env) -> None:
    from coincurve import PrivateKey

    from fedimint_gw.services.peering.hello import MAX_INTRODUCTIONS

    me = env.node.node_id
    for i in range(2000):
        node_key = PrivateKey()
        node_id = node_key.public_key.format().hex()
        peer_key = wire.PeerKey(i.to_bytes(4, "big"))
        body = {
            "node_id": node_id,
            "peer_key": peer_key.public_hex,
            "binding": node_key.sign(wire.binding_text(peer_key.public_hex, node_id).encode()).hex(),
            "versions": {"min": 1, "max": 1},
            "api_url": f"http://127.0.0.1:1/{i}",
            "credit_limit_msat": 1000,
        }
        raw = json.dumps(body).encode()
        headers, _ = wire.sign_request(peer_key, "/v1/peer/hello", node_id, me, raw, env.gateway.clock.now())
        answer = await env.gateway.peer_message("hello", headers, raw)
        assert answer.status == 200 and json.loads(answer.body)["known"] is False
    listed = await env.gateway.peer_list()
    assert listed["peers"] == [] and len(listed["introductions"]) == MAX_INTRODUCTIONS
    assert await _count(env, "peers") == 0 and await _count(env, "peer_nonces") == 0


async def test_a_remove_during_our_hello_is_not_undone(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _link(env, env_b)
    from fedimint_gw.peer.client import PeerClient

    real_call = PeerClient.call

    async def remove_meanwhile(self: Any, link: Any, message: str, body: dict[str, Any], *a: Any) -> Any:
        answer = await real_call(self, link, message, body, *a)
        if message == "hello":
            await env.gateway.peer_remove(env_b.node.node_id)  # the operator, while the answer travels
        return answer

    monkeypatch.setattr(PeerClient, "call", remove_meanwhile)
    await env.gateway.peers.refresh()
    rec = await peer_repo.get(env.gateway.db.conn, env_b.node.node_id)
    assert rec is not None and rec.state is peer_repo.PeerState.REMOVED
    assert (await env.gateway.peer_list())["peers"] == []


async def test_a_credit_cut_during_our_hello_is_not_undone(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _link(env, env_b)
    from fedimint_gw.peer.client import PeerClient

    real_call = PeerClient.call
    cut: list[bool] = []

    async def cut_meanwhile(self: Any, link: Any, message: str, body: dict[str, Any], *a: Any) -> Any:
        answer = await real_call(self, link, message, body, *a)
        if message == "hello" and not cut:
            cut.append(True)  # the operator cuts B's credit while A's refresh hello is answered
            await env.gateway.peer_add(env_b.node.node_id, env_b.api_url, 1_000)
        return answer

    monkeypatch.setattr(PeerClient, "call", cut_meanwhile)
    await env.gateway.peers.refresh()
    assert cut
    rec = await peer_repo.get(env.gateway.db.conn, env_b.node.node_id)
    assert rec is not None and rec.credit_limit_msat == 1_000 and rec.state is peer_repo.PeerState.ACTIVE


async def test_a_remove_during_the_peers_hello_is_not_undone(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _link(env, env_b)
    real_check = env_b.node.check_message

    async def remove_meanwhile(message: str, zbase: str, node_id: str) -> bool:
        await env_b.gateway.peer_remove(env.node.node_id)  # B's operator, while B checks A's binding
        return await real_check(message, zbase, node_id)

    monkeypatch.setattr(env_b.node, "check_message", remove_meanwhile)
    await env.gateway.peers.hello(env_b.node.node_id)
    rec = await peer_repo.get(env_b.gateway.db.conn, env.node.node_id)
    assert rec is not None and rec.state is peer_repo.PeerState.REMOVED
    mine = await peer_repo.get(env.gateway.db.conn, env_b.node.node_id)
    assert mine is not None and mine.state is peer_repo.PeerState.PENDING  # B said: not known (any more)


def _hostile_hello_answers(e: Env, monkeypatch: pytest.MonkeyPatch, rewrite: Any) -> None:
    """`e` answers every hello with `rewrite(body bytes)`, signed with its own peer key (a peer
    whose software or operator is hostile, not a tampering proxy)."""
    real = e.gateway.peer_message

    async def hostile(message: str, headers: Any, raw: bytes) -> wire.PeerAnswer:
        answer = await real(message, headers, raw)
        if message != "hello" or answer.status != 200:
            return answer
        body = rewrite(answer.body)
        nonce = headers[wire.H_NONCE]
        text = wire.response_text("/v1/peer/hello", e.node.node_id, nonce, 200, body)
        return wire.PeerAnswer(200, body, {**answer.headers, wire.H_SIG: e.gateway.peers.key.sign(text)})

    monkeypatch.setattr(e.gateway, "peer_message", hostile)


def _with_announce(announce: Any) -> Any:
    def rewrite(body: bytes) -> bytes:
        return json.dumps({**json.loads(body), "announce": announce}).encode()

    return rewrite


def _deeply_nested(body: bytes) -> bytes:
    return body[:-1] + b', "junk": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"


@pytest.mark.parametrize(
    "rewrite",
    [
        _with_announce({"routes": 5}),
        _with_announce({"federations": [{"federation_id": "ab", "scid": 7}]}),
        _with_announce([1, 2]),
        _deeply_nested,
    ],
    ids=["routes-not-a-list", "bad-federation", "announce-not-an-object", "deeply-nested"],
)
async def test_a_peers_malformed_hello_answer_breaks_neither_the_refresh_nor_other_peers(
    env: Env, env_b: Env, env_c: Env, monkeypatch: pytest.MonkeyPatch, rewrite: Any
) -> None:
    await _link(env, env_b)
    await _link(env, env_c)
    before = await peer_repo.get(env.gateway.db.conn, env_b.node.node_id)
    assert before is not None
    _hostile_hello_answers(env_b, monkeypatch, rewrite)
    async with env.gateway.db.transaction() as conn:  # so that C's refresh shows
        await conn.execute("UPDATE peers SET last_seen = 0 WHERE node_id = ?", (env_c.node.node_id,))
    await env.gateway.peers.refresh()  # must not raise: one peer's data never stops the others
    after_b = await peer_repo.get(env.gateway.db.conn, env_b.node.node_id)
    after_c = await peer_repo.get(env.gateway.db.conn, env_c.node.node_id)
    assert after_b is not None and after_c is not None
    assert after_b.announce == before.announce and after_b.last_error  # nothing taken from it
    assert after_c.last_seen and after_c.state is peer_repo.PeerState.ACTIVE
    assert not any(lvl == "error" for lvl, _ in env.logs)


async def test_a_peers_malformed_announcement_is_refused_and_sends_keep_working(env: Env, env_b: Env) -> None:
    from fedimint_gw.lightning import bolt11
    from fedimint_gw.peer.errors import PeerRefused

    await _link(env, env_b)
    # B announces a route whose scids are a number; A refuses the hello and keeps what it had.
    target = "02" + "33" * 32
    hostile = await env_b.gateway.peers._routes.announcement(env.node.node_id)
    hostile["routes"] = [{"node_id": target, "scids": 12345}]
    body = {
        "node_id": env_b.node.node_id,
        "peer_key": env_b.gateway.peers.key.public_hex,
        "binding": await env_b.node.sign_message(
            wire.binding_text(env_b.gateway.peers.key.public_hex, env_b.node.node_id)
        ),
        "versions": {"min": 1, "max": 1},
        "credit_limit_msat": 1000,
        "announce": hostile,
    }
    link = await env_b.gateway.peers.link(env.node.node_id)
    with pytest.raises(PeerRefused) as refused:
        await env_b.gateway.peers.client.call(link, "hello", body)
    assert refused.value.peer_code == "invalid" and "scids" in refused.value.message
    rec = await peer_repo.get(env.gateway.db.conn, env_b.node.node_id)
    assert (
        rec is not None and rec.credit_limit_msat == 10_000_000 and rec.peer_credit_limit_msat == 10_000_000
    )
    assert not any(lvl == "error" for lvl, _ in env.logs)
    # A send towards that node is planned without error (over Lightning: no peer announces it).
    import secrets
    import time

    from coincurve import PrivateKey

    hint = bolt11.RouteHop(bytes.fromhex(target), 1 << 40, 0, 0, 18)
    content = bolt11.InvoiceContent(
        currency="bcrt",
        amount_msat=10_000,
        timestamp=int(time.time()),
        payment_hash=secrets.token_bytes(32),
        payment_secret=secrets.token_bytes(32),
        description="towards the announced node",
        features=bolt11.DEFAULT_FEATURES,
        route_hints=((hint,),),
    )
    invoice = bolt11.sign_with_key(bolt11.encode_unsigned(content), PrivateKey())
    assert await env.gateway.peers.find_target(bolt11.decode(invoice)) is None


# ----- forward deadlines (issue 14 #10) -----------------------------------------------------------
class _Later:
    """A clock `seconds` ahead of the system's (a restart that took that long)."""

    def __init__(self, seconds: int) -> None:
        self._seconds = seconds

    def now(self) -> int:
        import time

        return int(time.time()) + self._seconds


async def _forward_directly(env: Env, env_b: Env, body: dict[str, Any], message: str = "forward") -> Any:
    """A's gateway sends `body` to B as it would send a forward (signed, over HTTP)."""
    peers = env.gateway.peers
    return await peers.client.call(await peers.link(env_b.node.node_id), message, body)


def _forward_body(
    receive: wallet_ln.Receive, deadline: int | None, forward_id: str = "f-test"
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "forward_id": forward_id,
        "invoice": receive.bolt11,
        "payment_hash": receive.payment_hash,
        "amount_msat": 20_000,
        "hops": 0,
    }
    return body if deadline is None else {**body, "deadline": deadline}


async def test_a_forward_carries_a_deadline_from_the_users_timelock(env: Env, env_b: Env) -> None:
    from fedimint_gw.services.peering.forward_sender import MAX_FORWARD_WINDOW

    src, dst, sender, receiver = await _setup(env, env_b, 2, 2)
    receive = await _receive(env_b, dst, receiver, 20_000)
    before = env.gateway.clock.now()
    await _pay(env, src, sender, receive.bolt11, 2 * default_fee(20_000))
    [inbound] = await _forwards(env_b, "in")
    [outbound] = await _forwards(env, "out")
    deadline = inbound.data["deadline"]
    assert deadline == outbound.data["deadline"]
    assert before < deadline <= env.gateway.clock.now() + MAX_FORWARD_WINDOW


async def test_the_receiver_refuses_a_forward_without_time_or_a_deadline(env: Env, env_b: Env) -> None:
    from fedimint_gw.peer.errors import PeerRefused, proves_not_started

    _src, dst, _sender, receiver = await _setup(env, env_b, 2, 2)
    receive = await _receive(env_b, dst, receiver, 20_000)
    now = env.gateway.clock.now()
    for deadline, code in ((now + 3, "refused"), (now - 60, "refused"), (None, "invalid")):
        with pytest.raises(PeerRefused) as refused:
            await _forward_directly(env, env_b, _forward_body(receive, deadline))
        assert refused.value.peer_code == code and proves_not_started(refused.value)
    # A link that negotiated version 1 (no deadlines) does not forward at all.
    async with env_b.gateway.db.transaction() as conn:
        await conn.execute("UPDATE peers SET version = 1")
    with pytest.raises(PeerRefused) as refused:
        await _forward_directly(env, env_b, _forward_body(receive, now + 300))
    assert refused.value.peer_code == "unsupported_version" and proves_not_started(refused.value)
    assert await _forwards(env_b, "in") == []  # nothing was accepted


async def test_the_receiver_never_starts_a_forward_after_its_deadline(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from fedimint_gw.services.flow_runs import FlowRuns

    _src, dst, _sender, receiver = await _setup(env, env_b, 2, 2)
    receive = await _receive(env_b, dst, receiver, 20_000)

    def dies_before_running(self: Any, rec: Any) -> Any:
        done = asyncio.get_running_loop().create_future()  # B accepted and stored the forward,
        done.set_result(rec)  # then stopped before running it
        return done

    monkeypatch.setattr(FlowRuns, "start", dies_before_running)
    deadline = env.gateway.clock.now() + 20
    answer = await _forward_directly(env, env_b, _forward_body(receive, deadline))
    assert answer["state"] == "pending"
    monkeypatch.undo()
    await env_b.restart_gateway(_Later(30))  # B comes back after the deadline

    async def ended() -> bool:
        recs = await pay_repo.by_hash(env_b.gateway.db.conn, receive.payment_hash, PaymentKind.PEER)
        return bool(recs) and recs[0].state.terminal

    await wait_until(ended)
    [rec] = await pay_repo.by_hash(env_b.gateway.db.conn, receive.payment_hash, PaymentKind.PEER)
    assert rec.state is PaymentState.FAILED and "target_contract_id" not in rec.data  # never funded
    status = await _forward_directly(
        env, env_b, {"forward_id": "f-test", "cancel_unknown": True}, "forward_status"
    )
    assert status["state"] == "failed"  # the sender refunds its user; nothing is owed
    assert await _balance(env_b, env) == 0
    # The receive is back on the Lightning path, unpaid.
    reg = await pay_repo.get(env_b.gateway.db.conn, str(rec.data["registered_id"]))
    assert reg is not None and reg.state is PaymentState.REGISTERED


async def test_the_sender_does_not_forward_to_a_peer_without_deadlines(env: Env, env_b: Env) -> None:
    src, dst, sender, receiver = await _setup(env, env_b, 2, 2)
    receive = await _receive(env_b, dst, receiver, 20_000)
    async with env.gateway.db.transaction() as conn:  # the link negotiated version 1
        await conn.execute("UPDATE peers SET version = 1")
    await _pay(env, src, sender, receive.bolt11, 2 * default_fee(20_000))
    assert receive.payment_hash in env.node.pay_calls and await _forwards(env_b, "in") == []
    assert any("without forward deadlines" in m for _, m in env.logs)


async def test_the_sender_never_sends_a_forward_past_its_deadline(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fedimint_gw.services.peering.forward_sender import ForwardSender

    src, dst, sender, receiver = await _setup(env, env_b, 2, 2)
    receive = await _receive(env_b, dst, receiver, 20_000)

    crashed: list[str] = []

    async def crash(self: Any, rec: Any) -> Any:
        crashed.append(rec.payment_id)
        raise Crash()  # A stored the forward, then died before sending it

    monkeypatch.setattr(ForwardSender, "resolve", crash)
    await _pay_until_crash(env, src, sender, receive.bolt11, 2 * default_fee(20_000), crashed)
    monkeypatch.undo()
    [rec] = await pay_repo.by_hash(env.gateway.db.conn, receive.payment_hash, PaymentKind.PEER)
    assert rec.state is PaymentState.HTLC_HELD and "sent" not in rec.data
    async with env.gateway.db.transaction() as conn:  # A comes back after the forward's deadline
        await conn.execute(
            "UPDATE payments SET data_json = json_set(data_json, '$.deadline', ?) WHERE payment_id = ?",
            (env.gateway.clock.now() - 1, rec.payment_id),
        )
    await env.restart_gateway()

    async def finished() -> bool:
        done = await pay_repo.get(env.gateway.db.conn, rec.payment_id)
        return done is not None and done.state.terminal

    await wait_until(finished)
    done = await pay_repo.get(env.gateway.db.conn, rec.payment_id)
    assert done is not None and done.state is PaymentState.REFUNDED and "deadline" in str(done.error)
    assert await _forwards(env_b, "in") == [] and env.node.pay_calls == []  # neither forwarded nor paid


async def test_a_settlement_survives_an_unexpected_failure_and_finishes(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _in_debt(env, env_b, 40_000)
    real_status = env.node.payment_status
    failed: list[str] = []

    async def breaks_once(payment_hash: str) -> Any:
        if not failed:
            failed.append(payment_hash)
            raise RuntimeError("something nobody expected")
        return await real_status(payment_hash)

    monkeypatch.setattr(env.node, "payment_status", breaks_once)
    settled = await env.gateway.peer_settle(env_b.node.node_id, None)
    assert failed and settled["state"] == "done" and await _balance(env, env_b) == 0
    assert any(lvl == "warn" and "something nobody expected" in m for lvl, m in env.logs)


# ----- the v2 receive a forward pays (found by the regtest crash matrix, B at `peer:htlc_held`) ---
async def test_a_forward_racing_an_htlc_for_its_receive_is_refused_and_funds_nothing(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The forward used to be stored first and the receive taken after, the taking's answer
    ignored: an HTLC that took the receive between the forward's look-up and its taking left the
    receive funded twice (by the HTLC's path and by the forward)."""
    from fedimint_gw.peer.errors import PeerRefused, proves_not_started
    from fedimint_gw.services.payments.swap import SwapService

    _src, dst, _sender, receiver = await _setup(env, env_b, 2, 2)
    receive = await _receive(env_b, dst, receiver, 20_000)
    conn = env_b.gateway.db.conn
    [reg] = await pay_repo.by_hash(conn, receive.payment_hash, PaymentKind.RECEIVE)
    ecash = await env_b.gateway.federations.client(FederationId(dst.federation_id)).balance()
    check_liquidity = SwapService.check_liquidity

    async def an_htlc_takes_it_meanwhile(self: SwapService, target: Any) -> None:
        await check_liquidity(self, target)  # the forward's last check before it takes the receive
        # What the HTLC path writes when an HTLC takes the registration (receive._accept).
        held = reg.advance(PaymentState.HTLC_HELD, reg.updated_at, htlc_scid="100x1x0", htlc_id=7)
        async with env_b.gateway.db.transaction() as c:
            await pay_repo.save(c, held)

    monkeypatch.setattr(SwapService, "check_liquidity", an_htlc_takes_it_meanwhile)

    with pytest.raises(PeerRefused) as refused:
        await _forward_directly(env, env_b, _forward_body(receive, env.gateway.clock.now() + 300))
    assert refused.value.peer_code == "refused" and proves_not_started(refused.value)
    assert await pay_repo.by_hash(conn, receive.payment_hash, PaymentKind.PEER) == []
    assert await env_b.gateway.federations.client(FederationId(dst.federation_id)).balance() == ecash
    after = await pay_repo.get(conn, reg.payment_id)
    assert after is not None and after.state is PaymentState.HTLC_HELD and after.htlc_scid == "100x1x0"


async def test_a_forward_stored_before_it_took_its_receive_takes_it_when_resumed(
    env: Env, env_b: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database from before the forward and the taking were one write: the forward stored,
    the receive still REGISTERED (B died between the two). Resumed, the forward used to fund the
    receiver and leave the receive REGISTERED for ever, payable a second time over Lightning."""
    import asyncio

    from fedimint_gw.services.flow_runs import FlowRuns

    _src, dst, _sender, receiver = await _setup(env, env_b, 2, 2)
    receive = await _receive(env_b, dst, receiver, 20_000)

    def dies_before_running(self: Any, rec: Any) -> Any:
        done = asyncio.get_running_loop().create_future()
        done.set_result(rec)
        return done

    monkeypatch.setattr(FlowRuns, "start", dies_before_running)
    answer = await _forward_directly(env, env_b, _forward_body(receive, env.gateway.clock.now() + 300))
    assert answer["state"] == "pending"
    monkeypatch.undo()
    conn = env_b.gateway.db.conn
    [reg] = await pay_repo.by_hash(conn, receive.payment_hash, PaymentKind.RECEIVE)
    async with env_b.gateway.db.transaction() as c:  # the older write order, cut in between
        await pay_repo.save(c, reg.released(reg.updated_at))
    await env_b.restart_gateway()

    async def ended() -> bool:
        recs = await pay_repo.by_hash(env_b.gateway.db.conn, receive.payment_hash, PaymentKind.PEER)
        return bool(recs) and recs[0].state.terminal

    await wait_until(ended)
    [rec] = await pay_repo.by_hash(env_b.gateway.db.conn, receive.payment_hash, PaymentKind.PEER)
    assert rec.state is PaymentState.SUCCEEDED
    after = await pay_repo.get(env_b.gateway.db.conn, reg.payment_id)
    assert after is not None and after.state is PaymentState.SUCCEEDED and after.preimage == rec.preimage


async def test_a_forward_that_ends_tells_the_events_as_every_payment_does(env: Env, env_b: Env) -> None:
    """Found in review: inbound and routed forwards wrote their end directly, and no
    `fedimint_payment_finished` notification left the plugin for them."""
    from fedimint_gw.services.events import PAYMENT_FINISHED
    from tests.e2e.test_operations import _with_events

    events = await _with_events(env_b)
    src, dst, sender, receiver = await _setup(env, env_b, 2, 2)
    receive = await _receive(env_b, dst, receiver, 20_000)
    await _pay(env, src, sender, receive.bolt11, 2 * default_fee(20_000))
    finished = [(e["kind"], e["state"]) for e in events.of(PAYMENT_FINISHED)]
    assert sorted(finished) == [("peer", "succeeded"), ("receive", "succeeded")]
