"""Demo rows of the Fedimint family: the official Fedimint client (npm WASM build, under Node).

One driver process (``tests/interop/official_client.py``) joins the ``fm`` federation as a fresh
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

from contrib.regtest import fedimint_family
from contrib.regtest.demo import PAID, REFUNDED, SKIPPED, Row, unroutable_invoice
from contrib.regtest.lightning import Node, node
from contrib.regtest.state import NetworkState
from fedimint_gw.lightning import bolt11
from tests.interop.official_client import OfficialClient, missing_requirements

CLIENT = "official client"
USER = "demo"
RECEIVE_MSAT = 21_000_000
SEND_MSAT = 10_000_000
REFUND_MSAT = 5_000_000
SEND_FEES = {"base_msat": 1000, "ppm": 1000}
JOIN_TIMEOUT = 60.0
FLOW_TIMEOUT = 120.0
RECEIVE_DONE = {"claimed", "canceled"}
PAY_DONE = {"success", "refunded", "failed", "canceled"}


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


def _key(state: object) -> str:
    """The name of a client state update: ``"claimed"`` or ``{"success": {...}}`` -> ``"success"``."""
    return state if isinstance(state, str) else next(iter(state), "") if isinstance(state, dict) else ""


class _ClientDemo:
    def __init__(self, state: NetworkState) -> None:
        self.state = state
        self.fed = state.federations[fedimint_family.KEY]
        self.payer = node(state, "payer")
        self.gateway: Node = node(state, str(self.fed["gateway"]))
        self.gateway_id = str(state.nodes[str(self.fed["gateway"])]["id"])
        self.client: OfficialClient | None = None

    async def run(self, rows: list[Row]) -> list[Row]:
        receive, send, refund = rows
        try:
            self.client = await OfficialClient.start()
        except Exception as exc:  # reported in every row; the rest of the demo is unaffected
            return [replace(r, result="failed", detail=f"driver: {type(exc).__name__}: {exc}") for r in rows]
        try:
            await self.client.join(USER, str(self.fed["invite_code"]), timeout=JOIN_TIMEOUT)
            done = [await self._row(receive, self.receive(receive))]
            done.append(await self._row(send, self.send(send)))
            done.append(await self._row(refund, self.refund(refund)))
            return done
        except Exception as exc:  # the join failed: every row says so
            return [replace(r, result="failed", detail=f"join: {type(exc).__name__}: {exc}") for r in rows]
        finally:
            await self.client.close()

    @staticmethod
    async def _row(row: Row, flow: Coroutine[Any, Any, Row]) -> Row:
        try:
            return await flow
        except Exception as exc:  # recorded in the table like demo.Demo.run does
            return replace(row, result="failed", detail=f"{type(exc).__name__}: {exc}")

    @property
    def _c(self) -> OfficialClient:
        if self.client is None:
            raise RuntimeError("the official client is not started")
        return self.client

    async def _call(self, n: Node, method: str, **params: Any) -> dict[str, Any]:
        return await asyncio.to_thread(n.call, method, **params)

    async def _balance(self) -> int:
        return int(await self._c.rpc_one("", "get_balance", {}, client_name=USER))

    async def _gateway_info(self) -> dict[str, Any]:
        """Gateway A's registration as the client sees it (after refreshing its cache)."""
        await self._c.rpc("ln", "update_gateway_cache", client_name=USER, timeout=FLOW_TIMEOUT)
        listed = await self._c.rpc_one("ln", "list_gateways", client_name=USER)
        for entry in listed:
            if entry["info"]["node_pub_key"] == self.gateway_id:
                return dict(entry["info"])
        raise LookupError(f"gateway {self.gateway_id[:16]}… is not in the client's list: {listed}")

    async def _follow(self, method: str, operation_id: str, done: set[str]) -> list[Any]:
        states: list[Any] = []
        for item in await self._c.rpc(
            "ln", method, {"operation_id": operation_id}, client_name=USER, timeout=FLOW_TIMEOUT
        ):
            states.append(item)
            if _key(item) in done:
                break
        return states

    async def receive(self, row: Row) -> Row:
        amount = row.amount_msat or 0
        info = await self._gateway_info()
        before = await self._balance()
        created = await self._c.rpc_one(
            "ln",
            "create_bolt11_invoice",
            {
                "amount": amount,
                "description": "regtest demo: into the official Fedimint client",
                "expiry_time": None,
                "extra_meta": {},
                "gateway": info,
            },
            client_name=USER,
            timeout=FLOW_TIMEOUT,
        )
        start = time.monotonic()
        paid = await self._call(self.payer, "xpay", invstring=created["invoice"])
        latency = int((time.monotonic() - start) * 1000)
        preimage = bytes.fromhex(str(paid["payment_preimage"]))
        states = await self._follow("subscribe_ln_receive", created["operation_id"], RECEIVE_DONE)
        got = await self._balance() - before
        if not states or _key(states[-1]) != "claimed":
            return replace(row, latency_ms=latency, result="failed", detail=f"client states {states}")
        if hashlib.sha256(preimage).hexdigest() != _invoice_hash(created["invoice"]):
            return replace(row, latency_ms=latency, result="failed", detail="wrong preimage")
        fee = int(paid["amount_sent_msat"]) - got
        return replace(row, fee_msat=fee, latency_ms=latency, result=PAID, detail=f"client got {got} msat")

    async def _pay(self, row: Row, invoice: str) -> tuple[list[Any], int, int, dict[str, Any]]:
        """Pay ``invoice`` from the client through the gateway: (states, latency, spent, answer)."""
        info = await self._gateway_info()
        before = await self._balance()
        start = time.monotonic()
        answer = await self._c.rpc_one(
            "ln",
            "pay_bolt11_invoice",
            {"maybe_gateway": info, "invoice": invoice, "extra_meta": {}},
            client_name=USER,
            timeout=FLOW_TIMEOUT,
        )
        states = await self._follow("subscribe_ln_pay", answer["payment_type"]["lightning"], PAY_DONE)
        latency = int((time.monotonic() - start) * 1000)
        return states, latency, before - await self._balance(), dict(answer)

    async def send(self, row: Row) -> Row:
        amount = row.amount_msat or 0
        label = f"demo-fm-{secrets.token_hex(4)}"
        made = await self._call(self.payer, "invoice", amount_msat=amount, label=label, description=label)
        fid = str(self.fed["federation_id"])
        receive_fees = dict(self.fed.get("fees", fedimint_family.RECEIVE_FEES))
        await self._call(self.gateway, "fedimint-setfees", federation_id=fid, **SEND_FEES)
        try:
            states, latency, spent, _ = await self._pay(row, str(made["bolt11"]))
        finally:  # back to what the client's LNv1 invoices can pay (0/0)
            await self._call(self.gateway, "fedimint-setfees", federation_id=fid, **receive_fees)
        found = (await self._call(self.payer, "listinvoices", label=label))["invoices"]
        settled = bool(found) and found[0]["status"] == "paid"
        if not states or _key(states[-1]) != "success" or not settled:
            return replace(row, latency_ms=latency, result="failed", detail=f"client states {states}")
        fees = f"A charged {SEND_FEES['base_msat']} msat + {SEND_FEES['ppm']} ppm"
        return replace(row, fee_msat=spent - amount, latency_ms=latency, result=PAID, detail=fees)

    async def refund(self, row: Row) -> Row:
        amount = row.amount_msat or 0
        states, latency, spent, _ = await self._pay(row, unroutable_invoice(amount))
        if not states or _key(states[-1]) != "refunded":
            return replace(row, latency_ms=latency, result="failed", detail=f"client states {states}")
        return replace(row, fee_msat=spent, latency_ms=latency, result=REFUNDED, detail="client refunded")


def _invoice_hash(invoice: str) -> str:
    return bolt11.decode(invoice).payment_hash.hex()
