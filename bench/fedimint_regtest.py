"""Scenario 7: the Fedimint family (Fedimint's own protocol, LNv1) through gateway A, driven by the
official Fedimint client, side by side with plain Core Lightning payments over the same channels.

A devfed federation speaking Fedimint's protocol (mint + `ln`) runs in its own process; gateway A
(l2) joins it (adapter `fedimint-lnv1`) at 0 msat + 0 ppm (the client's LNv1 invoices carry no
gateway fee, see contrib/regtest/fedimint_family.py) and gets faucet ecash. The official client
(npm WASM build under Node, one driver process) joins it and is funded by one untimed receive.
Then `count` rounds, each timing one payment of every variant in turn:

- receive baseline: l1 `xpay`s a plain invoice of l2;
- receive: l1 `xpay`s an invoice the client made through A (route hint to A's scid for the
  federation). Timed like scenario 2: the payer's `xpay`, HTLC out -> preimage back (A funds the
  incoming contract, the guardians decrypt the preimage). Making the invoice and the client's
  claim of the ecash afterwards are not timed;
- send baseline: l2 `xpay`s a plain invoice of l3;
- send: the client pays a fresh invoice of l3 through A. Timed: the client's `pay_bolt11_invoice`
  until its `success` state, i.e. what the user waits for: the client funds the outgoing
  contract (a federation transaction), A verifies it, pays l3 with `xpay` and claims, and the
  client notices. A's own share comes from its payment journal (`elapsed_ms`: contract verified
  -> paid -> contract claimed, a federation transaction awaited on a threshold) in a row of its
  own; it includes the claim, which scenario 3 (request -> preimage) does not time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bench.regtest_net import Network
from bench.stats import Row, Summary, latency_row, ratio, unavailable
from contrib.devfed.fedimint.faucet import faucet_notes
from contrib.official_client.driver import missing_requirements
from contrib.regtest.official_user import OfficialUser
from fedimint_gw.fedimint.endpoints import bootstrap_client_config
from fedimint_gw.fedimint.invite import parse_invite_code
from fedimint_gw.lightning import bolt11

GROUP = "7 fedimint"
AMOUNT_MSAT = 10_000
GATEWAY_ECASH_MSAT = 100_000_000
CLIENT_FUND_MSAT = 2_000_000
ZERO_FEES = {"base_msat": 0, "ppm": 0}
RECEIVE = "7 receive Fedimint LNv1 (official client's invoice, l1 -> A -> fed)"
SEND = "7 send Fedimint LNv1 (official client -> A -> l3)"
RECEIVE_BASE = "7 plain 1-hop invoice l1->l2"
SEND_BASE = "7 plain 1-hop payment l2->l3"
Rpc = Callable[..., Awaitable[Any]]
Tick = Callable[[str], None]


def skipped_rows(why: str) -> list[Row]:
    """The scenario's rows when it cannot run (no node, no npm package)."""
    return [
        unavailable(GROUP, RECEIVE, "<= 1.5", why),
        unavailable(GROUP, SEND, "", why),
    ]


async def _fund_gateway(rpc: Rpc, gateway: Any, invite: str, admin_url: str) -> str:
    joined = await rpc(gateway, "fedimint-connect", {"invite_code": invite})
    if joined.get("adapter") != "fedimint-lnv1":
        raise RuntimeError(f"gateway A joined the Fedimint federation as {joined.get('adapter')!r}")
    fid = str(joined["federation_id"])
    await rpc(gateway, "fedimint-setfees", {"federation_id": fid, **ZERO_FEES})
    async with aiohttp.ClientSession() as session:
        config = await bootstrap_client_config(parse_invite_code(invite), session)
        notes = await faucet_notes(session, admin_url, config, GATEWAY_ECASH_MSAT)
    got = await rpc(gateway, "fedimint-ecash-receive", {"federation_id": fid, "notes": notes.oob.encode()})
    if int(got["received_msat"]) != GATEWAY_ECASH_MSAT:
        raise RuntimeError(f"gateway A received {got['received_msat']} msat of faucet ecash")
    return fid


class FedimintScenario:
    """Scenario 7 on a started network; `rpc(node, method, params)` runs lightningd calls."""

    def __init__(self, net: Network, rpc: Rpc, tick: Tick) -> None:
        self.net = net
        self.rpc = rpc
        self.tick = tick
        self._label = 0

    async def _plain_invoice(self, node: Any) -> str:
        self._label += 1
        made = await self.rpc(node, "invoice", [AMOUNT_MSAT, f"bench-fm-{self._label}", "bench"])
        return str(made["bolt11"])

    async def _xpay(self, node: Any, invoice: str) -> float:
        start = time.perf_counter()
        paid = await self.rpc(node, "xpay", {"invstring": invoice})
        elapsed = time.perf_counter() - start
        if "payment_preimage" not in paid:
            raise RuntimeError(f"xpay did not pay: {paid}")
        return elapsed

    async def run(self, count: int) -> list[Row]:
        missing = missing_requirements()
        if missing:
            return skipped_rows("official Fedimint client missing: " + "; ".join(missing))
        fed = self.net.start_fedimint_federation()
        await _fund_gateway(self.rpc, self.net.gateway, fed.invite_code, fed.admin_url)
        self.tick("7 fedimint: gateway A joined the Fedimint federation and holds ecash there")
        user = await OfficialUser.start(fed.invite_code, "bench")
        try:
            return await self._rounds(user, count)
        finally:
            await user.close()

    async def _rounds(self, user: OfficialUser, count: int) -> list[Row]:
        l1, l2, l3 = self.net.nodes[:3]
        gateway = await user.gateway(str(l2.info["id"]))
        funding = await user.invoice(gateway, CLIENT_FUND_MSAT, "bench: funds for the sends")
        await self._xpay(l1, funding.bolt11)
        if (await user.received(funding)).final != "claimed":
            raise RuntimeError("the official client did not claim its funding receive")
        sent: list[str] = []

        async def receive() -> float:
            invoice = await user.invoice(gateway, AMOUNT_MSAT, "bench")
            elapsed = await self._xpay(l1, invoice.bolt11)
            outcome = await user.received(invoice)  # untimed: the client claims its ecash
            if outcome.final != "claimed":
                raise RuntimeError(f"official client receive ended {outcome.states}")
            return elapsed

        async def send() -> float:
            invoice = await self._plain_invoice(l3)
            sent.append(bolt11.decode(invoice).payment_hash.hex())
            start = time.perf_counter()
            outcome = await user.pay(gateway, invoice)
            elapsed = time.perf_counter() - start
            if outcome.final != "success":
                raise RuntimeError(f"official client send ended {outcome.states}")
            return elapsed

        async def receive_base() -> float:
            return await self._xpay(l1, await self._plain_invoice(l2))

        async def send_base() -> float:
            return await self._xpay(l2, await self._plain_invoice(l3))

        runs: dict[str, Callable[[], Awaitable[float]]] = {
            "receive base": receive_base,
            "receive": receive,
            "send base": send_base,
            "send": send,
        }
        got: dict[str, list[float]] = {k: [] for k in runs}
        for i in range(count):
            for key, run in runs.items():
                got[key].append(await run())
            self.tick(f"7 fedimint: {i + 1}/{count}")
        at_gateway = await self._elapsed_at(l2, set(sent))
        return self._rows(got, at_gateway)

    async def _elapsed_at(self, node: Any, hashes: set[str]) -> list[float]:
        for _ in range(200):  # the client may see success before A has recorded its claim
            payments = (await self.rpc(node, "fedimint-payments", {"limit": 1000}))["payments"]
            done = [p for p in payments if p["payment_hash"] in hashes and "elapsed_ms" in p]
            if len(done) == len(hashes):
                break
            await asyncio.sleep(0.05)
        return [float(p["elapsed_ms"]) for p in done]

    @staticmethod
    def _rows(got: dict[str, list[float]], at_gateway: list[float]) -> list[Row]:
        receive_note = "timed: the payer's xpay (HTLC out -> preimage); invoice and claim untimed"
        send_note = (
            "timed: the client's pay call -> its success state (it funds the contract first, "
            "then polls): what the user waits for, not only the gateway"
        )
        rows = [
            latency_row(GROUP, RECEIVE_BASE, got["receive base"], None, None, ""),
            latency_row(
                GROUP, RECEIVE, got["receive"], RECEIVE_BASE, got["receive base"], "<= 1.5", receive_note
            ),
            latency_row(GROUP, SEND_BASE, got["send base"], None, None, ""),
            latency_row(GROUP, SEND, got["send"], SEND_BASE, got["send base"], "", send_note),
        ]
        if at_gateway:
            summary = Summary.of(at_gateway)
            base_p50 = Summary.of([x * 1000 for x in got["send base"]]).p50
            rows.append(
                Row(
                    GROUP,
                    "7 of which at gateway A: contract verified -> paid and claimed",
                    "ms",
                    summary,
                    baseline=SEND_BASE,
                    ratio=ratio(summary.p50, base_p50),
                    note="from A's payment journal (elapsed_ms); includes the claim of the client's "
                    "contract, which scenario 3's timed window does not: no target",
                )
            )
        return rows
