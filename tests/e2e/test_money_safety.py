"""Issue 14 (money safety): each test here failed on the code before its fix."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from pathlib import Path
from typing import Any

import pytest

from contrib.devfed import wallet_ln
from contrib.devfed.codec import sign
from contrib.devfed.contracts import SEND_AUTH_PURPOSE
from contrib.devfed.wallet import Wallet
from fedimint_gw.clock import SystemClock
from fedimint_gw.config import build_config
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.errors import InvalidInput, LeaveUnanswered, NotReady, PaymentRefused
from fedimint_gw.federation.client import IncomingOutcome, IncomingState
from fedimint_gw.lightning import bolt11
from fedimint_gw.services.gateway import Gateway
from fedimint_gw.services.payments import receive as receive_module
from fedimint_gw.services.payments import send as send_module
from fedimint_gw.store import payments as pay_repo
from tests.e2e.conftest import Env, ecash_becomes, wait_until
from tests.e2e.helpers import external_invoice
from tests.support.fake_node import FakeNode, final_payload, forward_payload


async def test_the_gateway_refuses_to_start_unless_xpay_waits_for_every_part(tmp_path: Path) -> None:
    config = build_config(
        {"fedimint-gw-db": str(tmp_path / "gw.sqlite3"), "fedimint-gw-api-bind": "off"},
        {"lightning-dir": str(tmp_path), "network": "regtest"},
    )
    gateway = Gateway(config, FakeNode(slow_mode=False), SystemClock(), lambda m, lvl: None)
    with pytest.raises(InvalidInput, match="xpay-slow-mode=true"):
        await gateway.start()
    await gateway.stop()
    assert not (tmp_path / "gw.sqlite3").exists()  # refused before anything was opened


async def _v2_send_body(
    env: Env, user: Wallet, fed_id: str, invoice: str, amount: int
) -> tuple[str, dict[str, object]]:
    """A funded v2 outgoing contract for `invoice` and the owner's signed send request."""
    gateway_key = env.gateway.federations.client(FederationId(fed_id)).gateway_pubkey
    inv = bolt11.decode(invoice)
    cid, contract, refund_key = await wallet_ln.fund_outgoing(
        user, inv.payment_hash.hex(), amount, gateway_key
    )
    return cid, {
        "federation_id": fed_id,
        "contract": contract,
        "contract_id": cid,
        "invoice": invoice,
        "auth": sign(refund_key, SEND_AUTH_PURPOSE, {"contract_id": cid, "invoice": invoice}),
    }


async def test_two_contracts_for_one_hash_sent_at_once_pay_once_and_refund_the_other(env: Env) -> None:
    """Finding 6: both passed the 'already being paid' check; the invoice was paid once and both
    contracts claimed, so the second user paid for nothing."""
    fed = await env.federation("samehash", (2,))
    await env.gateway.federations.connect(fed.invite_code)
    alice, bob = await env.wallet(fed, "alice"), await env.wallet(fed, "bob")
    await alice.faucet(100_000)
    await bob.faucet(100_000)
    preimage = secrets.token_bytes(32)
    invoice = external_invoice(env.node.add_payee(preimage), 10_000)
    cid_a, body_a = await _v2_send_body(env, alice, fed.federation_id, invoice, 20_000)
    cid_b, body_b = await _v2_send_body(env, bob, fed.federation_id, invoice, 20_000)
    answers = await asyncio.gather(
        env.gateway.public.send_payment(body_a),
        env.gateway.public.send_payment(body_b),
        return_exceptions=True,
    )
    await env.settled(cid_a)
    await env.settled(cid_b)
    states = sorted(
        [
            (await pay_repo.get(env.gateway.db.conn, f"send:{cid}")).state.value  # type: ignore[union-attr]
            for cid in (cid_a, cid_b)
        ]
    )
    assert states == ["refunded", "succeeded"], answers
    assert len(env.node.pay_calls) == 1


async def test_two_htlcs_for_one_v2_registration_at_once_are_not_both_resolved(env: Env) -> None:
    """Finding 15: both HTLCs took the registration and were resolved against one funding, so
    the payer paid twice."""
    fed = await env.federation("v2twice", (2,))
    await env.gateway.federations.connect(fed.invite_code)
    await env.fund_gateway(fed, 200_000)
    user = await env.wallet(fed, "carol")
    receive = await wallet_ln.receive_v2(user, env.api_url, 40_000, "once")
    inv = bolt11.decode(receive.bolt11)
    secret = (inv.payment_secret or b"").hex()
    height = env.node.block_height
    answers = await asyncio.gather(
        *(
            env.htlc(*final_payload(receive.payment_hash, secret, 40_000, 40_000, height + 50, height, i))
            for i in (1, 2)
        )
    )
    assert sorted(a["result"] for a in answers) == ["fail", "resolve"]
    funded = [
        r
        for r in await pay_repo.by_hash(env.gateway.db.conn, receive.payment_hash, PaymentKind.RECEIVE)
        if r.state is PaymentState.SUCCEEDED
    ]
    assert len(funded) == 1


async def _v1_receive(env: Env, name: str) -> tuple[Any, Any, dict[str, Any]]:
    """A v1 federation with 100,000 msat of gateway ecash and an offer of 10,000 msat."""
    fed = await env.federation(name, (1,))
    info = await env.gateway.federations.connect(fed.invite_code)
    await env.fund_gateway(fed, 100_000)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "u")
    receive = await wallet_ln.receive_v1(user, client.gateway_pubkey, 10_000, "x")
    height = env.node.block_height
    payload = forward_payload(info["scid"], receive.payment_hash, 10_000, 20_000, height + 100, height)
    return fed, receive, {"onion": payload[0], "htlc": payload[1]}


async def _ecash(env: Env, fed_id: str) -> int:
    return (await env.gateway.federations.client(FederationId(fed_id)).balance()).value


async def test_after_funding_an_unexpected_error_keeps_the_htlc_and_resolves(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 4: a malformed guardian answer after funding made the hook answer `fail`: the
    receiver was paid and the HTLC failed back."""
    monkeypatch.setattr(receive_module, "RETRY_PAUSE", 0.01, raising=False)
    fed, _receive, hook = await _v1_receive(env, "malformed")
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    real = client.await_preimage
    calls: list[str] = []

    async def malformed_once(contract_id: str, timeout: float) -> Any:
        calls.append(contract_id)
        if len(calls) == 1:
            raise KeyError("state")  # what a guardian's malformed contract view raised
        return await real(contract_id, timeout)

    monkeypatch.setattr(client, "await_preimage", malformed_once)
    answer = await env.htlc(hook["onion"], hook["htlc"])
    assert answer["result"] == "resolve" and len(calls) == 2
    await ecash_becomes(env, fed.federation_id, 90_000)
    assert any(lvl == "error" and "KeyError" in m for lvl, m in env.logs)


async def test_a_replayed_funded_htlc_resolves_even_when_getinfo_fails(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 4: a getinfo error on a replayed HTLC made the hook answer `fail`."""
    fed, _receive, hook = await _v1_receive(env, "getinfo")
    first = await env.htlc(hook["onion"], hook["htlc"])
    assert first["result"] == "resolve"

    async def broken_getinfo() -> Any:
        raise OSError("lightningd's RPC socket is gone")

    monkeypatch.setattr(env.node, "info", broken_getinfo)
    assert await env.htlc(hook["onion"], hook["htlc"]) == first
    await ecash_becomes(env, fed.federation_id, 90_000)


async def test_shutdown_under_a_held_funded_htlc_answers_nothing_and_the_replay_resolves(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 12: stop() closed the HTTP session and the database under the running flow, and the
    hook answered `fail` ("Session is closed") for a funded HTLC."""
    monkeypatch.setattr(receive_module, "RETRY_PAUSE", 0.01, raising=False)
    fed, _receive, hook = await _v1_receive(env, "shutdown")
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    real = client.await_preimage

    async def guardians_still_deciding(contract_id: str, timeout: float) -> IncomingOutcome:
        await real(contract_id, 0.05)  # talks to the guardians, as a slow decryption does
        return IncomingOutcome(IncomingState.PENDING)

    monkeypatch.setattr(client, "await_preimage", guardians_still_deciding)
    held = asyncio.create_task(env.htlc(hook["onion"], hook["htlc"]))

    async def funded() -> bool:
        rec = await pay_repo.by_htlc(env.gateway.db.conn, "103x1x0", 0)
        return rec is not None and rec.state is PaymentState.FUNDED

    await wait_until(funded)
    await env.gateway.stop()
    outcome = (await asyncio.gather(held, return_exceptions=True))[0]
    # No answer at all (the bridge answers nothing for these), never a `fail`.
    assert isinstance(outcome, (asyncio.CancelledError, LeaveUnanswered)), outcome
    monkeypatch.undo()
    await env.restart_gateway()  # lightningd restarted: it replays the held HTLC
    answer = await env.htlc(hook["onion"], hook["htlc"])
    assert answer["result"] == "resolve"
    await ecash_becomes(env, fed.federation_id, 90_000)  # funded once


async def test_an_htlc_replayed_under_the_channels_real_scid_is_recognised(env: Env) -> None:
    """Finding 7: delivered under the channel's local alias, replayed after a lightningd restart
    under the real scid once the channel confirmed, the HTLC looked new: its second funding
    was refused and the funded HTLC failed."""
    fed, _receive, hook = await _v1_receive(env, "alias")
    env.node.aliases = [{"15000000x1x1", "103x1x0"}]  # local alias, then the confirmed scid
    as_alias = {**hook["htlc"], "short_channel_id": "15000000x1x1"}
    first = await env.htlc(hook["onion"], as_alias)
    assert first["result"] == "resolve"
    replay = await env.htlc(hook["onion"], {**hook["htlc"], "short_channel_id": "103x1x0"})
    assert replay == first
    await ecash_becomes(env, fed.federation_id, 90_000)
    # Another channel's HTLC with the same id is not mistaken for it.
    other = {**hook["htlc"], "short_channel_id": "104x1x0"}
    assert (await env.htlc(hook["onion"], other))["result"] == "fail"


async def test_a_v2_contract_sent_through_the_v1_route_without_its_owners_auth_is_refused(env: Env) -> None:
    """Finding 14: /v1/pay_invoice read no authorization, so anyone knowing a v2 contract id and
    its hash could front-run the owner with a same-hash invoice to an unpayable node and get the
    contract forfeited."""
    fed = await env.federation("frontrun", (2,))
    await env.gateway.federations.connect(fed.invite_code)
    owner = await env.wallet(fed, "owner")
    await owner.faucet(100_000)
    preimage = secrets.token_bytes(32)
    payment_hash = env.node.add_payee(preimage)
    invoice = external_invoice(payment_hash, 10_000)
    cid, body = await _v2_send_body(env, owner, fed.federation_id, invoice, 20_000)
    forged = external_invoice(payment_hash, 10_000)  # same hash, a node nobody can pay
    attack = {"federation_id": fed.federation_id, "contract_id": cid, "invoice": forged}
    for extra in (
        {},
        {"preimage_auth": "00" * 32},
        {"auth": body["auth"]},
    ):  # the owner's auth is for another invoice
        with pytest.raises(PaymentRefused, match="not authorized"):
            await env.gateway.public.pay_invoice({**attack, **extra})
    assert env.node.pay_calls == []
    assert await pay_repo.get(env.gateway.db.conn, f"send:{cid}") is None  # nothing recorded
    answer = await env.gateway.public.send_payment(body)  # the owner's own request still pays
    assert answer["preimage"] == preimage.hex()


async def test_a_v1_send_without_a_well_formed_preimage_auth_is_refused(env: Env) -> None:
    """Finding 14: v1's documented preimage_auth was never read."""
    fed = await env.federation("v1auth", (1,))
    await env.gateway.federations.connect(fed.invite_code)
    user = await env.wallet(fed, "v1user")
    await user.faucet(100_000)
    invoice = external_invoice(env.node.add_payee(secrets.token_bytes(32)), 10_000)
    gateway_key = env.gateway.federations.client(FederationId(fed.federation_id)).gateway_pubkey
    inv = bolt11.decode(invoice)
    cid, _contract, refund_key = await wallet_ln.fund_outgoing(
        user, inv.payment_hash.hex(), 20_000, gateway_key
    )
    body = {"federation_id": fed.federation_id, "contract_id": cid, "invoice": invoice}
    for bad in ({}, {"preimage_auth": "xyz"}, {"preimage_auth": 5}):
        with pytest.raises(PaymentRefused, match="not authorized"):
            await env.gateway.public.pay_invoice({**body, **bad})
    assert env.node.pay_calls == []
    owner = {**body, "preimage_auth": hashlib.sha256(refund_key.secret).hexdigest()}
    assert "preimage" in await env.gateway.public.pay_invoice(owner)


async def test_an_htlc_not_funded_by_its_deadline_is_failed_in_time(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 5: with the ecash reserved (a reservation left by a crash), the flow retried every
    0.1 s, silently, past the HTLC's expiry, which forces a channel close."""
    fed, _receive, hook = await _v1_receive(env, "deadline")
    client = env.gateway.federations.client(FederationId(fed.federation_id))

    async def reserved(request: Any, operation_id: str) -> str:
        raise NotReady("the gateway's notes are reserved by another operation")

    monkeypatch.setattr(client, "fund_incoming", reserved)
    held = asyncio.create_task(env.htlc(hook["onion"], hook["htlc"]))

    async def waiting() -> bool:
        rec = await pay_repo.by_htlc(env.gateway.db.conn, "103x1x0", 0)
        return rec is not None and rec.state is PaymentState.HTLC_HELD

    await wait_until(waiting)
    assert any("reserved" in m for _lvl, m in env.logs)  # the wait is not silent
    # Blocks pass: the HTLC (expiry height + 100) reaches expiry - margin.
    env.node.block_height += 100 - env.gateway.config.cltv_margin
    answer = await asyncio.wait_for(held, 30)
    assert answer["result"] == "fail" and answer["failure_message"].startswith("400f")
    rec = await pay_repo.by_htlc(env.gateway.db.conn, "103x1x0", 0)
    assert rec is not None and rec.state is PaymentState.FAILED and "deadline" in (rec.error or "")
    await ecash_becomes(env, fed.federation_id, 100_000)  # nothing funded


async def test_a_funded_htlc_past_its_deadline_is_never_held_silently(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 5: after funding, with the preimage withheld, the HTLC was held past its expiry
    without a word. It must not be failed (the receiver may get paid), but said loudly."""
    fed, _receive, hook = await _v1_receive(env, "withheld")
    client = env.gateway.federations.client(FederationId(fed.federation_id))

    async def withheld(contract_id: str, timeout: float) -> IncomingOutcome:
        await asyncio.sleep(0.01)
        return IncomingOutcome(IncomingState.PENDING)

    monkeypatch.setattr(client, "await_preimage", withheld)
    held = asyncio.create_task(env.htlc(hook["onion"], hook["htlc"]))

    async def funded() -> bool:
        rec = await pay_repo.by_htlc(env.gateway.db.conn, "103x1x0", 0)
        return rec is not None and rec.state is PaymentState.FUNDED

    await wait_until(funded)
    env.node.block_height += 100 - env.gateway.config.cltv_margin
    await wait_until(lambda: any(lvl == "error" and "past its deadline" in m for lvl, m in env.logs))
    assert not held.done()  # still held, never failed
    await env.gateway.stop()
    assert isinstance((await asyncio.gather(held, return_exceptions=True))[0], asyncio.CancelledError)


async def test_a_paid_send_survives_a_malformed_claim_answer(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In the spirit of finding 4, on the send side: once the invoice is paid, an unexpected error
    while claiming ended the flow, and the gateway was never paid back until a restart."""
    monkeypatch.setattr(send_module, "STATUS_POLL", 0.01)
    fed = await env.federation("claimfail", (2,))
    await env.gateway.federations.connect(fed.invite_code)
    user = await env.wallet(fed, "payer")
    await user.faucet(100_000)
    invoice = external_invoice(env.node.add_payee(secrets.token_bytes(32)), 10_000)
    cid, body = await _v2_send_body(env, user, fed.federation_id, invoice, 20_000)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    real = client.claim_outgoing
    calls: list[str] = []

    async def malformed_once(contract_id: str, preimage: bytes) -> Any:
        calls.append(contract_id)
        if len(calls) == 1:
            raise KeyError("amount_msat")
        return await real(contract_id, preimage)

    monkeypatch.setattr(client, "claim_outgoing", malformed_once)
    assert "preimage" in await env.gateway.public.send_payment(body)
    await env.settled(cid)
    rec = await pay_repo.get(env.gateway.db.conn, f"send:{cid}")
    assert rec is not None and rec.state is PaymentState.SUCCEEDED and len(calls) == 2
