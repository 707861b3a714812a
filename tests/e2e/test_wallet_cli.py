"""The `devfed wallet` CLI receives and pays over Lightning through the gateway."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import pytest

from contrib.devfed import cli
from fedimint_gw.lightning import bolt11
from tests.e2e.conftest import Env
from tests.e2e.helpers import external_invoice
from tests.support.fake_node import final_payload


async def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code = await asyncio.to_thread(cli.main, list(argv))
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


async def test_wallet_cli_lightning_receive_claim_and_pay(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    fed = await env.federation("cli", (2,))
    await env.gateway.federations.connect(fed.invite_code)
    await env.fund_gateway(fed, 100_000)
    wallet = str(env.tmp / "cli.wallet")
    gw = ["--gateway-api", env.api_url, "--gateway-node", env.node.node_id]
    await _cli(capsys, "wallet", "--wallet", wallet, "join", fed.invite_code)
    made = await _cli(capsys, "wallet", "--wallet", wallet, "ln-invoice", "30000", "coffee", *gw)
    inv = bolt11.decode(made["bolt11"])
    height = env.node.block_height
    answer = await env.htlc(
        *final_payload(
            inv.payment_hash.hex(), (inv.payment_secret or b"").hex(), 30_000, 30_000, height + 50, height
        )
    )
    assert answer["result"] == "resolve"
    claimed = await _cli(capsys, "wallet", "--wallet", wallet, "ln-claim", made["claim_id"])
    assert claimed["claimed_msat"] == 30_000 - (2000 + 30_000 * 3000 // 1_000_000)

    preimage = secrets.token_bytes(32)
    invoice = external_invoice(env.node.add_payee(preimage), 10_000)
    paid = await _cli(capsys, "wallet", "--wallet", wallet, "ln-pay", invoice, *gw)
    assert paid["preimage"] == preimage.hex()
    assert paid["balance_msat"] == claimed["claimed_msat"] - 10_000 - (2000 + 10_000 * 3000 // 1_000_000)
