"""Per-federation controls (fedimint-setlimits): persisted, validated, enforced before any funding."""

from __future__ import annotations

import secrets

import pytest

from contrib.devfed import wallet_ln
from contrib.devfed.errors import DevfedError
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentState
from fedimint_gw.errors import InvalidInput, NotFound
from fedimint_gw.store import payments as pay_repo
from tests.e2e.conftest import Env, ecash_becomes
from tests.e2e.helpers import external_invoice
from tests.e2e.test_payments import _gateway_ecash
from tests.support.fake_node import forward_payload

FEE_30K = 2000 + 30_000 * 3000 // 1_000_000


async def _joined(env: Env, name: str, majors: tuple[int, ...]) -> tuple[object, dict[str, object]]:
    fed = await env.federation(name, majors)
    info = await env.gateway.federations.connect(fed.invite_code)
    return fed, info


@pytest.mark.parametrize(
    "changes",
    [
        {"max_ecash_msat": "-5"},
        {"max_ecash_msat": "lots"},
        {"low_water_msat": True},
        {"receives": "maybe"},
        {"drain": 2},
        {"max_ecash_msat": 1000, "low_water_msat": 2000},  # alert above the cap
        {"receives": False, "sends": "nope"},  # one bad value refuses the good one too
        {"colour": "blue"},
        {},
    ],
)
async def test_setlimits_refuses_bad_values_and_changes_nothing(env: Env, changes: dict[str, object]) -> None:
    fed, _ = await _joined(env, "ctlbad", (1,))
    before = await env.gateway.set_limits(fed.federation_id, {"max_ecash_msat": 500_000})
    with pytest.raises(InvalidInput):
        await env.gateway.set_limits(fed.federation_id, changes)
    info = await env.gateway.info()
    assert info["federations"][0]["controls"] == before["controls"]
    assert not [m for lvl, m in env.logs if lvl == "error"]
    assert any(lvl == "info" and "fedimint-setlimits refused" in m for lvl, m in env.logs)


async def test_setlimits_unknown_federation_is_not_found(env: Env) -> None:
    with pytest.raises(NotFound):
        await env.gateway.set_limits("ab" * 32, {"drain": True})
    assert any(lvl == "info" and "not a member" in m for lvl, m in env.logs)
    with pytest.raises(InvalidInput):
        await env.gateway.set_limits("not-a-federation", {"drain": True})


async def test_controls_are_persisted_and_shown_in_info(env: Env) -> None:
    fed, _ = await _joined(env, "ctlinfo", (1,))
    answer = await env.gateway.set_limits(
        fed.federation_id,
        {"max_ecash_msat": "900sat", "low_water_msat": 100_000, "swaps_in": "false", "drain": "true"},
    )
    expected = {
        "max_ecash_msat": 900_000,
        "low_water_msat": 100_000,
        "receives": "enabled",
        "sends": "enabled",
        "swaps_in": "disabled",
        "swaps_out": "enabled",
        "mode": "drain",
    }
    assert answer["controls"] == expected
    await env.restart_gateway()
    assert (await env.gateway.info())["federations"][0]["controls"] == expected
    # Only what is given changes; "off" removes a limit.
    again = await env.gateway.set_limits(fed.federation_id, {"max_ecash_msat": "off", "drain": False})
    assert again["controls"] == {**expected, "max_ecash_msat": None, "mode": "normal"}


@pytest.mark.parametrize("control", [{"drain": True}, {"receives": False}])
async def test_receive_refused_by_drain_or_switch_funds_nothing(env: Env, control: dict[str, object]) -> None:
    fed, info = await _joined(env, "ctlrecv", (1,))
    await env.fund_gateway(fed, 100_000)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "rita")
    receive = await wallet_ln.receive_v1(user, client.gateway_pubkey, 10_000, "x")
    await env.gateway.set_limits(fed.federation_id, control)
    height = env.node.block_height
    payload = forward_payload(str(info["scid"]), receive.payment_hash, 10_000, 20_000, height + 100, height)
    answer = await env.htlc(*payload)
    assert answer["result"] == "fail" and answer["failure_message"].startswith("400f")
    await ecash_becomes(env, fed.federation_id, 100_000)
    rec = await pay_repo.by_htlc(env.gateway.db.conn, payload[1]["short_channel_id"], payload[1]["id"])
    assert rec is not None and rec.state is PaymentState.FAILED
    assert "draining" in str(rec.error) or "disabled" in str(rec.error)
    assert not [m for lvl, m in env.logs if lvl == "error"]


async def test_drain_refuses_v2_invoices(env: Env) -> None:
    fed, _ = await _joined(env, "ctlv2", (2,))
    await env.fund_gateway(fed, 100_000)
    await env.gateway.set_limits(fed.federation_id, {"drain": True})
    user = await env.wallet(fed, "vera")
    with pytest.raises(DevfedError, match="draining"):
        await wallet_ln.receive_v2(user, env.api_url, 40_000, "x")
    await env.gateway.set_limits(fed.federation_id, {"drain": False})
    assert (await wallet_ln.receive_v2(user, env.api_url, 40_000, "x")).bolt11


async def test_drain_still_allows_sends(env: Env) -> None:
    fed, _ = await _joined(env, "ctldrain", (1,))
    await env.gateway.set_limits(fed.federation_id, {"drain": True})
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "dora")
    await user.faucet(100_000)
    preimage = secrets.token_bytes(32)
    invoice = external_invoice(env.node.add_payee(preimage), 30_000)
    result = await wallet_ln.pay(user, invoice, env.api_url, client.gateway_pubkey, FEE_30K)
    await env.settled(str(result["contract_id"]))
    assert result["preimage"] == preimage.hex()


@pytest.mark.parametrize("control", [{"max_ecash_msat": 40_000}, {"sends": False}])
async def test_send_over_the_cap_or_disabled_is_refunded_and_nothing_paid(
    env: Env, control: dict[str, object]
) -> None:
    fed, _ = await _joined(env, "ctlcap", (1,))
    await env.fund_gateway(fed, 20_000)
    await env.gateway.set_limits(fed.federation_id, control)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "carl")
    await user.faucet(100_000)
    invoice = external_invoice(env.node.add_payee(secrets.token_bytes(32)), 30_000)
    # 20 000 held + 32 090 claimed would pass the 40 000 cap.
    result = await wallet_ln.pay(user, invoice, env.api_url, client.gateway_pubkey, FEE_30K)
    await env.settled(str(result["contract_id"]))
    assert "preimage" not in result and result["refunded_msat"] == 30_000 + FEE_30K
    assert env.node.pay_calls == []
    assert user.balance_msat() == 100_000
    await ecash_becomes(env, fed.federation_id, 20_000)
    rec = await pay_repo.get(env.gateway.db.conn, f"send:{result['contract_id']}")
    assert rec is not None and rec.state is PaymentState.REFUNDED
    assert "cap" in str(rec.error) or "disabled" in str(rec.error)


async def test_send_under_the_cap_is_paid(env: Env) -> None:
    fed, _ = await _joined(env, "ctlunder", (1,))
    await env.gateway.set_limits(fed.federation_id, {"max_ecash_msat": 32_090})  # exactly enough
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "uma")
    await user.faucet(100_000)
    preimage = secrets.token_bytes(32)
    invoice = external_invoice(env.node.add_payee(preimage), 30_000)
    result = await wallet_ln.pay(user, invoice, env.api_url, client.gateway_pubkey, FEE_30K)
    await env.settled(str(result["contract_id"]))
    assert result["preimage"] == preimage.hex()
    await ecash_becomes(env, fed.federation_id, 30_000 + FEE_30K)


@pytest.mark.parametrize(
    ("side", "control"),
    [
        ("src", {"swaps_out": False}),
        ("dst", {"swaps_in": False}),
        ("dst", {"drain": True}),
        ("src", {"max_ecash_msat": 10_000}),
        ("src", {"drain": True}),  # draining the source still lets its users pay out: allowed
    ],
)
async def test_swap_controls_refund_the_sender_and_fund_nothing(
    env: Env, side: str, control: dict[str, object]
) -> None:
    src = await env.federation("swsrc", (1,))
    dst = await env.federation("swdst", (1,))
    for fed in (src, dst):
        await env.gateway.federations.connect(fed.invite_code)
    await env.fund_gateway(dst, 100_000)
    await env.gateway.set_limits((src if side == "src" else dst).federation_id, control)
    sender = await env.wallet(src, "sw-sender")
    receiver = await env.wallet(dst, "sw-receiver")
    await sender.faucet(100_000)
    dst_client = env.gateway.federations.client(FederationId(dst.federation_id))
    src_client = env.gateway.federations.client(FederationId(src.federation_id))
    receive = await wallet_ln.receive_v1(receiver, dst_client.gateway_pubkey, 30_000, "swap")
    result = await wallet_ln.pay(sender, receive.bolt11, env.api_url, src_client.gateway_pubkey, FEE_30K)
    await env.settled(str(result["contract_id"]))
    rec = await pay_repo.get(env.gateway.db.conn, f"send:{result['contract_id']}")
    assert rec is not None and env.node.pay_calls == []
    if control == {"drain": True} and side == "src":
        assert "preimage" in result and rec.state is PaymentState.SUCCEEDED
        return
    assert "preimage" not in result and rec.state is PaymentState.REFUNDED
    assert sender.balance_msat() == 100_000
    await ecash_becomes(env, dst.federation_id, 100_000)  # nothing funded in the target
    await ecash_becomes(env, src.federation_id, 0)


async def test_setlimits_stands_when_the_limit_check_after_it_fails(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    fed, _ = await _joined(env, "ctlwatch", (1,))

    async def broken() -> None:
        raise RuntimeError("probe exploded")

    monkeypatch.setattr(env.gateway.ops.watcher, "check", broken)
    answer = await env.gateway.set_limits(fed.federation_id, {"drain": True})
    assert answer["controls"]["mode"] == "drain"
    assert (await env.gateway.info())["federations"][0]["controls"]["mode"] == "drain"
    assert any(lvl == "warn" and "probe exploded" in m for lvl, m in env.logs)


async def test_sends_checked_at_the_same_moment_cannot_pass_the_cap_together(env: Env) -> None:
    """The cap reserves what it grants until the payment is in the log, so two checks made
    before either payment is recorded see each other."""
    import time

    from fedimint_gw.domain.amount import Msat
    from fedimint_gw.domain.payment import PaymentKind
    from fedimint_gw.errors import PaymentRefused
    from fedimint_gw.services.federations.controls import CapReservations, FederationControls

    fed, _ = await _joined(env, "ctlrace", (1,))
    fid = FederationId(fed.federation_id)
    await env.gateway.set_limits(fed.federation_id, {"max_ecash_msat": 50_000})
    controls = FederationControls(env.gateway.db, env.gateway.clock, CapReservations())
    await controls.check_send(fid, Msat(30_000), "send:a")
    with pytest.raises(PaymentRefused, match="cap"):
        await controls.check_send(fid, Msat(30_000), "send:b")
    await controls.check_send(fid, Msat(30_000), "send:a")  # a repeated check does not count twice
    now = int(time.time())
    paying = pay_repo.PaymentRecord(
        payment_id="send:a",
        kind=PaymentKind.SEND,
        state=PaymentState.PAYING,
        payment_hash="11" * 32,
        amount_msat=28_000,
        fee_msat=2_000,
        federation_id=fed.federation_id,
        created_at=now,
        updated_at=now,
        data={"contract_id": "a"},
    )
    async with env.gateway.db.transaction() as conn:
        await pay_repo.save(conn, paying)
    with pytest.raises(PaymentRefused):  # recorded: the log counts it now
        await controls.check_send(fid, Msat(30_000), "send:b")
    async with env.gateway.db.transaction() as conn:
        await pay_repo.save(conn, paying.advance(PaymentState.REFUNDED, now))
    await controls.check_send(fid, Msat(30_000), "send:b")  # refunded: nothing was gained
