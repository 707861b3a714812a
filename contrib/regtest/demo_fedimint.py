"""Demo rows of the Fedimint family: the official Fedimint client (npm WASM build, under Node).

One driver process (``contrib/official_client/driver.py``) joins the ``fm`` federation as a fresh
client, finds gateway A in its gateway list and then, in order (each row funds the next):

1. ``Lightning -> Fedimint client (LNv1)``: the client makes an invoice through A, the payer node
   pays it with ``xpay``, the client claims the ecash.
2. ``Fedimint client (LNv1) -> Lightning``: the client pays a payer-node invoice through A; A
   charges ``SEND_FEES`` for this payment only (its receive fee on this federation stays 0/0, see
   ``fedimint_family``), so the row shows a gateway fee reaching the official client.
3. ``Fedimint client refund``: an invoice nobody can route; A cancels, the client is refunded.

Without node (>= 20) or the pinned npm package (``make interop-deps``) the rows are SKIPPED with
the reason; the rest of the demo runs.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

from contrib.official_client.driver import missing_requirements
from contrib.regtest import fedimint_family
from contrib.regtest.demo import PAID, REFUNDED, SKIPPED, Row, unroutable_invoice
from contrib.regtest.lightning import Node, node
from contrib.regtest.official_user import OfficialUser
from contrib.regtest.state import NetworkState
from fedimint_gw.lightning import bolt11

CLIENT = "official client"
RECEIVE_MSAT = 21_000_000
SEND_MSAT = 10_000_000
REFUND_MSAT = 5_000_000
SEND_FEES = {"base_msat": 1000, "ppm": 1000}


def planned_rows(state: NetworkState) -> list[Row]:
    """The three rows, not yet run."""
    gw = str(state.federations.get(fedimint_family.KEY, {}).get("gateway", fedimint_family.GATEWAY))
    path = f"Lightning via {gw.upper()}"
    return [
        Row("Lightning -> Fedimint client (LNv1)", "payer node", CLIENT, path, PAID, RECEIVE_MSAT),
        Row("Fedimint client (LNv1) -> Lightning", CLIENT, "payer node", path, PAID, SEND_MSAT),
        Row("Fedimint client refund", CLIENT, "unroutable", path, REFUNDED, REFUND_MSAT),
    ]


def skip_reason(state: NetworkState) -> str | None:
    """Why the official-client rows cannot run here, or None."""
    if fedimint_family.KEY not in state.federations:
        return "this network has no Fedimint-family federation (started by an older launcher: restart it)"
    missing = missing_requirements()
    if missing:
        return "official Fedimint client missing: " + "; ".join(missing)
    return None


def fedimint_rows(state: NetworkState) -> list[Row]:
    """Run the official-client rows (or mark them SKIPPED with the reason)."""
    rows = planned_rows(state)
    reason = skip_reason(state)
    if reason is not None:
        return [replace(r, expected=SKIPPED, result=SKIPPED, detail=f"SKIPPED: {reason}") for r in rows]
    return asyncio.run(_ClientDemo(state).run(rows))


async def _call(n: Node, method: str, **params: Any) -> dict[str, Any]:
    return await asyncio.to_thread(n.call, method, **params)


async def _row(row: Row, flow: Coroutine[Any, Any, Row]) -> Row:
    try:
        return await flow
    except Exception as exc:  # recorded in the table like demo.Demo.run does
        return replace(row, result="failed", detail=f"{type(exc).__name__}: {exc}")


class _ClientDemo:
    def __init__(self, state: NetworkState) -> None:
        self.fed = state.federations[fedimint_family.KEY]
        self.payer = node(state, "payer")
        self.gateway: Node = node(state, str(self.fed["gateway"]))
        self.gateway_id = str(state.nodes[str(self.fed["gateway"])]["id"])

    async def run(self, rows: list[Row]) -> list[Row]:
        receive, send, refund = rows
        try:
            user = await OfficialUser.start(str(self.fed["invite_code"]), "demo")
        except Exception as exc:  # reported in every row; the rest of the demo is unaffected
            detail = f"starting the client: {type(exc).__name__}: {exc}"
            return [replace(r, result="failed", detail=detail) for r in rows]
        try:
            return [
                await _row(receive, self.receive(user, receive)),
                await _row(send, self.send(user, send)),
                await _row(refund, self.refund(user, refund)),
            ]
        finally:
            await user.close()

    async def receive(self, user: OfficialUser, row: Row) -> Row:
        amount = row.amount_msat or 0
        gateway = await user.gateway(self.gateway_id)
        before = await user.balance()
        invoice = await user.invoice(gateway, amount, "regtest demo: into the official Fedimint client")
        start = time.monotonic()
        paid = await _call(self.payer, "xpay", invstring=invoice.bolt11)
        latency = int((time.monotonic() - start) * 1000)
        outcome = await user.received(invoice)
        got = await user.balance() - before
        if outcome.final != "claimed":
            return replace(row, latency_ms=latency, result="failed", detail=f"client states {outcome.states}")
        preimage = bytes.fromhex(str(paid["payment_preimage"]))
        if hashlib.sha256(preimage).digest() != bolt11.decode(invoice.bolt11).payment_hash:
            return replace(row, latency_ms=latency, result="failed", detail="wrong preimage")
        fee = int(paid["amount_sent_msat"]) - got
        return replace(row, fee_msat=fee, latency_ms=latency, result=PAID, detail=f"client got {got} msat")

    async def _pay(self, user: OfficialUser, bolt11_invoice: str) -> tuple[str, tuple[Any, ...], int, int]:
        """Pay from the client through the gateway: (final state, states, latency ms, spent msat)."""
        gateway = await user.gateway(self.gateway_id)
        before = await user.balance()
        start = time.monotonic()
        outcome = await user.pay(gateway, bolt11_invoice)
        latency = int((time.monotonic() - start) * 1000)
        return outcome.final, outcome.states, latency, before - await user.balance()

    async def send(self, user: OfficialUser, row: Row) -> Row:
        amount = row.amount_msat or 0
        label = f"demo-fm-{secrets.token_hex(4)}"
        made = await _call(self.payer, "invoice", amount_msat=amount, label=label, description=label)
        fid = str(self.fed["federation_id"])
        receive_fees = dict(self.fed.get("fees", fedimint_family.RECEIVE_FEES))
        await _call(self.gateway, "fedimint-setfees", federation_id=fid, **SEND_FEES)
        try:
            final, states, latency, spent = await self._pay(user, str(made["bolt11"]))
        finally:  # back to what the client's LNv1 invoices can pay (0/0)
            await _call(self.gateway, "fedimint-setfees", federation_id=fid, **receive_fees)
        found = (await _call(self.payer, "listinvoices", label=label))["invoices"]
        if final != "success" or not found or found[0]["status"] != "paid":
            return replace(row, latency_ms=latency, result="failed", detail=f"client states {states}")
        fees = f"A charged {SEND_FEES['base_msat']} msat + {SEND_FEES['ppm']} ppm"
        return replace(row, fee_msat=spent - amount, latency_ms=latency, result=PAID, detail=fees)

    async def refund(self, user: OfficialUser, row: Row) -> Row:
        final, states, latency, spent = await self._pay(user, unroutable_invoice(row.amount_msat or 0))
        if final != "refunded":
            return replace(row, latency_ms=latency, result="failed", detail=f"client states {states}")
        return replace(row, fee_msat=spent, latency_ms=latency, result=REFUNDED, detail="client refunded")
