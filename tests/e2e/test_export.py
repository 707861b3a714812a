"""fedimint-export: the rows are the payments, the sums are fedimint-summary's."""

from __future__ import annotations

import csv
import io
import secrets

import pytest

from contrib.devfed import wallet_ln
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.errors import InvalidInput
from tests.e2e.conftest import Env
from tests.e2e.helpers import external_invoice
from tests.support.fake_node import forward_payload

FEE_30K = 2000 + 30_000 * 3000 // 1_000_000


async def _known_payments(env: Env) -> str:
    """A succeeded receive, a succeeded send, a refunded send and a refused receive."""
    fed = await env.federation("exp", (1,))
    info = await env.gateway.federations.connect(fed.invite_code)
    await env.fund_gateway(fed, 100_000)
    client = env.gateway.federations.client(FederationId(fed.federation_id))
    user = await env.wallet(fed, "exp-user")
    await user.faucet(200_000)
    receive = await wallet_ln.receive_v1(user, client.gateway_pubkey, 50_000, "in")
    height = env.node.block_height
    fee = 2000 + 50_000 * 3000 // 1_000_000
    ok = await env.htlc(
        *forward_payload(str(info["scid"]), receive.payment_hash, 50_000, 50_000 + fee, height + 100, height)
    )
    assert ok["result"] == "resolve"
    bad = await env.htlc(
        *forward_payload(
            str(info["scid"]), secrets.token_hex(32), 1_000, 5_000, height + 100, height, htlc_id=7
        )
    )
    assert bad["result"] == "fail"
    paid = external_invoice(env.node.add_payee(secrets.token_bytes(32)), 30_000)
    sent = await wallet_ln.pay(user, paid, env.api_url, client.gateway_pubkey, FEE_30K)
    await env.settled(str(sent["contract_id"]))
    unpaid = external_invoice(secrets.token_hex(32), 30_000)
    failed = await wallet_ln.pay(user, unpaid, env.api_url, client.gateway_pubkey, FEE_30K)
    await env.settled(str(failed["contract_id"]))
    return fed.federation_id


async def test_export_rows_are_the_payments_and_sums_match_the_summary(env: Env) -> None:
    fid = await _known_payments(env)
    listed = (await env.gateway.payments("", "", 100, None))["payments"]
    summary = await env.gateway.summary(None, None)
    export = await env.gateway.export(None, None, "json")
    assert export["count"] == len(listed) == 4
    by_id = {p["payment_id"]: p for p in listed}
    for row in export["payments"]:
        p = by_id[row["payment_id"]]
        for key in ("kind", "state", "federation_id", "payment_hash", "amount_msat", "fee_msat"):
            assert row[key] == p[key], key
        assert row["created_at"] == p["created_at"]
        assert row["federation_id"] == fid
        assert (row["finished_at"] is not None) is (row["state"] in ("succeeded", "failed", "refunded"))
    states = sorted((r["kind"], r["state"], r["fee_direction"]) for r in export["payments"])
    assert states == [
        ("receive", "failed", "none"),
        ("receive", "succeeded", "earned"),
        ("send", "refunded", "none"),
        ("send", "succeeded", "earned"),
    ]
    assert set(export["totals"]) == set(summary["kinds"])
    for kind, t in export["totals"].items():
        s = summary["kinds"][kind]
        assert (t["count"], t["succeeded"], t["volume_msat"], t["fees_earned_msat"]) == (
            s["count"],
            s["succeeded"],
            s["volume_msat"],
            s["fees_earned_msat"],
        )
    assert export["totals"]["send"]["volume_msat"] == 30_000
    assert export["totals"]["send"]["fees_earned_msat"] == FEE_30K


async def test_export_csv_has_the_same_rows(env: Env) -> None:
    await _known_payments(env)
    as_json = await env.gateway.export(None, None, "json")
    as_csv = await env.gateway.export(None, None, "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv["csv"])))
    assert as_csv["totals"] == as_json["totals"] and as_csv["count"] == len(rows) == 4
    for got, want in zip(rows, as_json["payments"], strict=True):
        assert got == {k: "" if v is None else str(v) for k, v in want.items()}


async def test_export_period_and_bad_input(env: Env) -> None:
    await _known_payments(env)
    now = env.gateway.clock.now()
    assert (await env.gateway.export(now + 10, now + 20, "json"))["count"] == 0
    assert (await env.gateway.export(0, now + 10, "csv"))["count"] == 4
    for start, end, fmt in ((None, None, "xml"), (10, 5, "json"), ("-1", None, "json"), (True, None, "csv")):
        with pytest.raises(InvalidInput):
            await env.gateway.export(start, end, fmt)
    assert sum(1 for lvl, m in env.logs if lvl == "info" and "fedimint-export refused" in m) == 4
    assert not [m for lvl, m in env.logs if lvl == "error"]


async def test_export_csv_cells_cannot_run_as_formulas(env: Env) -> None:
    """Error texts can quote a federation or a peer: a cell a spreadsheet would evaluate
    (=, +, -, @) is written as text."""
    import time

    from fedimint_gw.domain.payment import PaymentKind, PaymentState
    from fedimint_gw.store import payments as pay_repo

    now = int(time.time())
    rec = pay_repo.PaymentRecord(
        payment_id="send:evil",
        kind=PaymentKind.SEND,
        state=PaymentState.REFUNDED,
        payment_hash="00" * 32,
        amount_msat=1,
        created_at=now,
        updated_at=now,
        error='=HYPERLINK("http://evil","x")',
    )
    async with env.gateway.db.transaction() as conn:
        await pay_repo.save(conn, rec)
    rows = list(csv.DictReader(io.StringIO((await env.gateway.export(None, None, "csv"))["csv"])))
    assert rows[0]["error"] == "'" + str(rec.error)
    assert (await env.gateway.export(None, None, "json"))["payments"][0]["error"] == rec.error
