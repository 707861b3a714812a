"""Metrics, health and notifications of the gateway services (the regtest file drives the plugin)."""

from __future__ import annotations

import contextlib
import secrets
import time
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from contrib.devfed import wallet_ln
from fedimint_gw.clock import SystemClock
from fedimint_gw.config import build_config
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.errors import InvalidInput
from fedimint_gw.http.app import HttpServer
from fedimint_gw.http.ops import create_ops_app
from fedimint_gw.services import gateway as gateway_module
from fedimint_gw.services.context import ServiceContext
from fedimint_gw.services.events import (
    FEDERATION_STATUS,
    LIMIT_CROSSED,
    LOSS_REPORTED,
    PAYMENT_FINISHED,
)
from fedimint_gw.services.gateway import Gateway
from fedimint_gw.store import payments as pay_repo
from tests.e2e.conftest import Env, wait_until
from tests.e2e.helpers import Crash, crash_after_writing, default_fee
from tests.e2e.test_export import FEE_30K, _known_payments
from tests.support.fake_node import forward_payload

RECEIVE_FEE_50K = 2000 + 50_000 * 3000 // 1_000_000


class Recorder:
    """A GatewayEvents that keeps every event."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def emit(self, topic: str, payload: dict[str, Any]) -> None:
        self.events.append((topic, payload))

    def of(self, topic: str) -> list[dict[str, Any]]:
        return [p for t, p in self.events if t == topic]


async def _with_events(env: Env) -> Recorder:
    """Restart the env's gateway with a recording event sink."""
    rec = Recorder()
    config = env.gateway.config
    await env.gateway.stop()
    env.gateway = Gateway(config, env.node, SystemClock(), env.log, events=rec)
    await env.gateway.start()
    return rec


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def _scrape(env: Env) -> tuple[int, str, dict[str, Any] | None]:
    server = HttpServer(create_ops_app(env.gateway.ops, env.log), "127.0.0.1", 0)
    await server.start()
    try:
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{server.port}/metrics") as r:
                assert r.headers["Content-Type"].startswith("text/plain")
                text = await r.text()
            async with s.get(f"http://127.0.0.1:{server.port}/health") as r:
                return r.status, text, await r.json()
    finally:
        await server.stop()


async def test_metrics_after_known_payments_are_exact(env: Env) -> None:
    fid = await _known_payments(env)
    status, text, health = await _scrape(env)
    m = _samples(text)

    def v(metric: str, /, **labels: str) -> float:
        return m[(metric, tuple(sorted(labels.items())))]

    for kind, state in (("receive", "succeeded"), ("receive", "failed"), ("send", "succeeded")):
        assert v("fedimint_gw_payments_total", kind=kind, state=state, federation=fid) == 1
    assert v("fedimint_gw_payments_total", kind="send", state="refunded", federation=fid) == 1
    assert v("fedimint_gw_payment_amount_msat_total", kind="receive", federation=fid) == 50_000
    assert v("fedimint_gw_payment_amount_msat_total", kind="send", federation=fid) == 30_000
    assert v("fedimint_gw_payment_fees_msat_total", kind="receive", federation=fid) == RECEIVE_FEE_50K
    assert v("fedimint_gw_payment_fees_msat_total", kind="send", federation=fid) == FEE_30K
    assert v("fedimint_gw_lost_msat_total", kind="send", federation=fid) == 0
    assert v("fedimint_gw_ecash_msat", federation=fid, name="exp") == 100_000 - 50_000 + 30_000 + FEE_30K
    assert v("fedimint_gw_htlcs_held") == 0
    assert v("fedimint_gw_federation_up", federation=fid) == 1
    assert v("fedimint_gw_federation_guardians", federation=fid) == 4
    assert v("fedimint_gw_federation_guardians_reachable", federation=fid) == 4
    assert v("fedimint_gw_federation_guardian_threshold", federation=fid) == 3
    # Finished payments with a start time: the succeeded receive, both sends.
    assert v("fedimint_gw_payment_duration_seconds_count", kind="receive") == 1
    assert v("fedimint_gw_payment_duration_seconds_count", kind="send") == 2
    assert status == 200 and health is not None and health["ready"] is True


async def test_health_turns_unready_when_a_federation_is_unreachable(env: Env) -> None:
    fed = await env.federation("hl", (1,))
    await env.gateway.federations.connect(fed.invite_code)
    status, _, body = await _scrape(env)
    assert status == 200 and body is not None and body["checks"]["federations"][0]["ok"] is True
    for peer in (0, 1):  # two of four guardians down: below the threshold of three
        async with env.session.post(
            f"{fed.admin_url}/admin/guardians/{peer}/fault", json={"mode": "offline"}
        ) as r:
            r.raise_for_status()
    status, text, body = await _scrape(env)
    assert status == 503 and body is not None and body["ready"] is False and body["live"] is True
    fed_check = body["checks"]["federations"][0]
    assert fed_check["ok"] is False and fed_check["guardians_reachable"] == 2
    assert body["checks"]["database"]["ok"] and body["checks"]["lightningd"]["ok"]
    m = _samples(text)
    assert m[("fedimint_gw_federation_up", (("federation", fed.federation_id),))] == 0


async def test_payment_finished_event_for_each_final_state(env: Env) -> None:
    rec = await _with_events(env)
    fid = await _known_payments(env)
    finished = rec.of(PAYMENT_FINISHED)
    got = sorted((e["kind"], e["state"]) for e in finished)
    # The refused receive never ran as a flow (refused before it was held): no event.
    assert got == [("receive", "succeeded"), ("send", "refunded"), ("send", "succeeded")]
    send = next(e for e in finished if e["kind"] == "send" and e["state"] == "succeeded")
    assert send["amount_msat"] == 30_000 and send["fee_msat"] == FEE_30K and send["federation_id"] == fid
    assert rec.of(LOSS_REPORTED) == []


async def test_loss_is_reported_once_when_the_flow_ends(env: Env) -> None:
    rec = await _with_events(env)
    gw = env.gateway
    ctx = ServiceContext(gw.config, gw.db, gw.node, gw.federations, gw.router, gw.clock, gw.log, gw.events)
    now = int(time.time())
    payment = pay_repo.PaymentRecord(
        payment_id="recv:1x1x1:1",
        kind=PaymentKind.RECEIVE,
        state=PaymentState.FUNDED,
        payment_hash=secrets.token_hex(32),
        amount_msat=12_345,
        created_at=now,
        updated_at=now,
        federation_id="ab" * 32,
    )
    funded = await ctx.advance(payment, PaymentState.FUNDED)
    await ctx.advance(funded, PaymentState.FAILED, error="lost", data={"lost_msat": 12_345})
    losses = rec.of(LOSS_REPORTED)
    assert len(losses) == 1 and losses[0]["lost_msat"] == 12_345 and losses[0]["kind"] == "receive"
    # `fedimint-payments` shows it on the receive's row (it showed lost_msat for migrations only).
    listed = await gw.payments(None, None, None, None)
    [row] = [p for p in listed["payments"] if p["payment_id"] == "recv:1x1x1:1"]
    assert row["lost_msat"] == 12_345
    _, text, _ = await _scrape(env)
    m = _samples(text)
    assert m[("fedimint_gw_lost_msat_total", (("federation", "ab" * 32), ("kind", "receive")))] == 12_345
    assert m[("fedimint_gw_losses_total", (("federation", "ab" * 32), ("kind", "receive")))] == 1


async def test_federation_status_and_limit_events(env: Env) -> None:
    rec = await _with_events(env)
    fed = await env.federation("watch", (1,))
    await env.gateway.federations.connect(fed.invite_code)
    await env.fund_gateway(fed, 50_000)
    watcher = env.gateway.ops.watcher
    await watcher.check()
    assert rec.of(FEDERATION_STATUS) == [] and rec.of(LIMIT_CROSSED) == []
    await env.gateway.set_limits(fed.federation_id, {"low_water_msat": 60_000})
    await watcher.check()
    [crossed] = rec.of(LIMIT_CROSSED)
    assert crossed["limit"] == "low_water" and crossed["now"] == "below" and crossed["ecash_msat"] == 50_000
    await watcher.check()  # no change, no second event
    assert len(rec.of(LIMIT_CROSSED)) == 1
    for peer in (0, 1):
        async with env.session.post(
            f"{fed.admin_url}/admin/guardians/{peer}/fault", json={"mode": "offline"}
        ) as r:
            r.raise_for_status()
    await watcher.check()
    [status] = rec.of(FEDERATION_STATUS)
    assert status["federation_id"] == fed.federation_id and status["up"] is False
    assert status["previous_up"] is True and status["guardians_reachable"] == 2


def test_metrics_bind_option(tmp_path: Any) -> None:
    base = {"lightning-dir": str(tmp_path)}
    assert build_config({}, base).metrics_bind is None
    bound = build_config({"fedimint-gw-metrics-bind": "127.0.0.1:9751"}, base).metrics_bind
    assert bound is not None and (bound.host, bound.port) == ("127.0.0.1", 9751)
    with pytest.raises(InvalidInput, match="fedimint-gw-metrics-bind"):
        build_config({"fedimint-gw-metrics-bind": "nowhere"}, base)


async def test_each_gateway_has_its_own_registry(env: Env) -> None:
    from prometheus_client import REGISTRY

    assert env.gateway.ops.registry is not REGISTRY
    names = {m.name for m in REGISTRY.collect()}
    assert not any(n.startswith("fedimint_gw") for n in names)


async def test_loss_of_an_orphaned_receive_is_notified_counted_and_exported(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Funded, then the plugin dies and lightningd fails the HTLC: the receiver is paid, the
    gateway is not. The loss reaches the notification, the metrics and the export."""

    fed = await env.federation("lossy", (1,))
    info = await env.gateway.federations.connect(fed.invite_code)
    await env.fund_gateway(fed, 100_000)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "u")
    receive = await wallet_ln.receive_v1(user, client.gateway_pubkey, 10_000, "x")
    height = env.node.block_height
    crash_after_writing(monkeypatch, PaymentKind.RECEIVE, PaymentState.FUNDED)
    with contextlib.suppress(Crash):
        await env.htlc(
            *forward_payload(info["scid"], receive.payment_hash, 10_000, 20_000, height + 100, height)
        )
    monkeypatch.undo()
    monkeypatch.setattr(gateway_module, "RECONCILE_GRACE", 0.0)
    env.node.held.clear()  # lightningd failed the HTLC when the plugin died; no replay
    rec = await _with_events(env)

    async def settled() -> bool:
        recs = await pay_repo.by_hash(env.gateway.db.conn, receive.payment_hash, PaymentKind.RECEIVE)
        return bool(recs) and all(r.state.terminal for r in recs)

    await wait_until(settled, timeout=60)
    [loss] = rec.of(LOSS_REPORTED)
    assert loss["lost_msat"] == 10_000 and loss["federation_id"] == fed.federation_id
    _, text, _ = await _scrape(env)
    m = _samples(text)
    key = (("federation", fed.federation_id), ("kind", "receive"))
    assert m[("fedimint_gw_lost_msat_total", key)] == 10_000
    export = await env.gateway.export(None, None, "json")
    assert export["totals"]["receive"]["lost_msat"] == 10_000


async def test_peer_ledger_metrics_after_a_forward(env: Env, env_b: Env) -> None:
    """A forwards one payment to B: both gateways' metrics show the ledger and credit in use."""
    from tests.e2e.helpers import claim_receive
    from tests.e2e.test_peers import _balance, _pay, _receive, _setup

    src, dst, sender, receiver = await _setup(env, env_b, 1, 1, b_grants=5_000_000)
    receive = await _receive(env_b, dst, receiver, 50_000)
    await _pay(env, src, sender, receive.bolt11, 2 * default_fee(50_000))
    await claim_receive(receiver, receive)
    forwarded = 50_000 + default_fee(50_000)
    assert await _balance(env, env_b) == -forwarded
    a, b = env.node.node_id, env_b.node.node_id
    m_a = _samples((await _scrape(env))[1])
    assert m_a[("fedimint_gw_peer_balance_msat", (("peer", b),))] == -forwarded
    assert m_a[("fedimint_gw_peer_credit_limit_msat", (("direction", "granted"), ("peer", b)))] == 10_000_000
    assert m_a[("fedimint_gw_peer_credit_limit_msat", (("direction", "received"), ("peer", b)))] == 5_000_000
    assert m_a[("fedimint_gw_peer_credit_used_msat", (("direction", "received"), ("peer", b)))] == forwarded
    assert m_a[("fedimint_gw_peer_credit_used_msat", (("direction", "granted"), ("peer", b)))] == 0
    m_b = _samples((await _scrape(env_b))[1])
    assert m_b[("fedimint_gw_peer_balance_msat", (("peer", a),))] == forwarded
    assert m_b[("fedimint_gw_peer_credit_used_msat", (("direction", "granted"), ("peer", a)))] == forwarded


async def test_held_htlcs_and_in_flight_payments_are_gauges(env: Env) -> None:
    now = int(time.time())
    fid = "cd" * 32
    for i, state in enumerate((PaymentState.HTLC_HELD, PaymentState.FUNDED, PaymentState.REGISTERED)):
        rec = pay_repo.PaymentRecord(
            payment_id=f"recv:9x9x9:{i}",
            kind=PaymentKind.RECEIVE,
            state=state,
            payment_hash=f"{i:064x}",
            amount_msat=1_000,
            federation_id=fid,
            htlc_scid=None if state is PaymentState.REGISTERED else "9x9x9",
            htlc_id=None if state is PaymentState.REGISTERED else i,
            created_at=now,
            updated_at=now,
        )
        async with env.gateway.db.transaction() as conn:
            await pay_repo.save(conn, rec)
    m = _samples((await _scrape(env))[1])
    assert m[("fedimint_gw_htlcs_held", ())] == 2
    labels = (("federation", fid), ("kind", "receive"))
    assert m[("fedimint_gw_payments_in_flight", (*labels[:1], labels[1], ("state", "htlc_held")))] == 1
    assert m[("fedimint_gw_payments_in_flight", (*labels[:1], labels[1], ("state", "funded")))] == 1
    assert not any(k[0] == "fedimint_gw_payments_total" for k in m)  # nothing finished
    assert not any(dict(k[1]).get("state") == "registered" for k in m)  # unpaid invoices are not payments


async def test_a_busy_metrics_port_does_not_stop_the_gateway(tmp_path: Any) -> None:
    import socket

    from tests.support.fake_node import FakeNode

    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port = busy.getsockname()[1]
    logs: list[tuple[str, str]] = []
    config = build_config(
        {
            "fedimint-gw-db": str(tmp_path / "gw.sqlite3"),
            "fedimint-gw-api-bind": "off",
            "fedimint-gw-metrics-bind": f"127.0.0.1:{port}",
        },
        {"lightning-dir": str(tmp_path)},
    )
    gateway = Gateway(config, FakeNode(), SystemClock(), lambda m, lvl: logs.append((lvl, m)))
    try:
        await gateway.start()
        assert gateway.ops_port is None
        assert any(lvl == "warn" and "cannot listen" in m for lvl, m in logs)
        assert (await gateway.info())["federations"] == []  # the gateway itself runs
    finally:
        await gateway.stop()
        busy.close()


async def test_the_metrics_listener_serves_on_its_port(tmp_path: Any) -> None:
    from ephemeral_port_reserve import reserve

    from tests.support.fake_node import FakeNode

    port = reserve()
    config = build_config(
        {
            "fedimint-gw-db": str(tmp_path / "gw.sqlite3"),
            "fedimint-gw-api-bind": "off",
            "fedimint-gw-metrics-bind": f"127.0.0.1:{port}",
        },
        {"lightning-dir": str(tmp_path)},
    )
    gateway = Gateway(config, FakeNode(), SystemClock(), lambda m, lvl: None)
    try:
        await gateway.start()
        assert gateway.ops_port == port
        async with aiohttp.ClientSession() as s:
            async with s.get(f"http://127.0.0.1:{port}/health/live") as r:
                assert r.status == 200 and (await r.json()) == {"live": True}
            async with s.get(f"http://127.0.0.1:{port}/metrics") as r:
                assert r.status == 200 and "fedimint_gw_htlcs_held 0.0" in await r.text()
    finally:
        await gateway.stop()
