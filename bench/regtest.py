"""The Lightning scenarios (1-7; 7 in bench/fedimint_regtest.py) against real lightningd.

Every flow is interleaved with its baseline (one of each per round) so drift on a shared
machine hits both alike. Untimed: making invoices, offers and contracts, and the user funding
an outgoing contract. Timed: the payer's `xpay` (receives, forwards, baselines) or the
gateway's send request from arrival to preimage (sends).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from bench.fedimint_regtest import FedimintScenario
from bench.regtest_net import FEDERATION_APIS, PEER_FEDERATION_APIS, Network, gateway_fee, rss_kb
from bench.stats import Row, Summary, ratio, selected
from bench.stats import latency_row as _row
from contrib.devfed import wallet_ln
from contrib.devfed.codec import sign
from contrib.devfed.contracts import SEND_AUTH_PURPOSE
from contrib.devfed.wallet import Wallet

AMOUNT_MSAT = 10_000
NOTE_MSAT = 16_384
PEER_CREDIT_MSAT = 100_000_000  # each way: no automatic settlement during the run (it starts at half)
Tick = Callable[[str], None]


@dataclass(frozen=True)
class RegtestCounts:
    """Payments per flow (scenarios 1-3) and for the throughput scenario (6)."""

    per_flow: int = 30
    throughput: int = 200
    in_flight: int = 20


class Scenarios:
    """Runs the scenarios on a started `Network`; users are devfed wallets in this process."""

    def __init__(self, net: Network, session: aiohttp.ClientSession, tick: Tick) -> None:
        self.net = net
        self.session = session
        self.tick = tick
        self.users: list[Wallet] = []
        self.keys: list[str] = []  # gateway key per federation (v1 registry / v2 routing info)
        self.peer_users: list[Wallet] = []  # on gateway B's federations (scenario 5)
        self.peer_keys: list[str] = []
        self._label = 0

    async def rpc(self, node: Any, method: str, params: Any = None) -> Any:
        """A lightningd RPC call on the network's thread pool (pyln opens a socket per call)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.net.executor, lambda: node.rpc.call(method, params))

    def label(self) -> str:
        self._label += 1
        return f"bench-{self._label}-{secrets.token_hex(4)}"

    async def setup(self, notes_per_fed: list[int]) -> None:
        """Join every federation of gateway A, fund A (in separate notes), make one user each."""
        for i, fed in enumerate(self.net.feds):
            user, key = await self._join(self.net.gateway, self.net.api_url, fed, notes_per_fed[i], f"{i}")
            self.users.append(user)
            self.keys.append(key)
            self.tick(f"federation {i + 1}/{len(self.net.feds)} joined and funded")

    async def setup_peers(self, notes_per_fed: int) -> None:
        """Scenario 5: gateway B joins its own federations (funded in separate notes), then A and B
        peer both ways with `fedimint-peer-add` and enough credit for the whole run."""
        a, b = self.net.gateway, self.net.peer_gateway
        for i, fed in enumerate(self.net.peer_feds):
            user, key = await self._join(b, self.net.peer_api_url, fed, notes_per_fed, f"b{i}")
            self.peer_users.append(user)
            self.peer_keys.append(key)
            self.tick(f"gateway B: federation {i + 1}/{len(self.net.peer_feds)} joined and funded")
        limit = PEER_CREDIT_MSAT
        await self.rpc(
            a,
            "fedimint-peer-add",
            {"node_id": b.info["id"], "url": self.net.peer_api_url, "credit_limit_msat": limit},
        )
        added = await self.rpc(
            b,
            "fedimint-peer-add",
            {"node_id": a.info["id"], "url": self.net.api_url, "credit_limit_msat": limit},
        )
        if added.get("status") != "active":
            raise RuntimeError(f"peering gateways A and B did not activate the link: {added}")
        peers = (await self.rpc(a, "fedimint-peer-list"))["peers"]
        announced = {f["federation_id"] for p in peers for f in p.get("federations", [])}
        if not {f.federation_id for f in self.net.peer_feds} <= announced:
            raise RuntimeError(f"gateway A does not see gateway B's federations: {peers}")
        self.tick("gateways A and B peered")

    async def _join(self, gw: Any, api_url: str, fed: Any, notes: int, tag: str) -> tuple[Wallet, str]:
        """`gw` joins `fed` and gets `notes` notes of ecash; a user of `fed` with funds, and the
        gateway's key as that user sees it."""
        await self.rpc(gw, "fedimint-connect", {"invite_code": fed.invite_code})
        funder = Wallet.open(self.net.tmp / f"funder-{tag}.wallet", self.session)
        await funder.join(fed.invite_code)
        await funder.faucet(notes * NOTE_MSAT + 1)
        for _ in range(notes):  # see bench.flows.split_liquidity
            ecash = await funder.send_ecash(NOTE_MSAT)
            await self.rpc(gw, "fedimint-ecash-receive", {"federation_id": fed.federation_id, "notes": ecash})
        user = Wallet.open(self.net.tmp / f"user-{tag}.wallet", self.session)
        await user.join(fed.invite_code)
        await user.faucet(5_000_000)
        if user.client.major == 1:
            reg = [g for g in await wallet_ln.v1_gateways(user) if g["node_pubkey"] == gw.info["id"]]
            return user, str(reg[0]["gateway_pubkey"])
        return user, str((await wallet_ln.routing_info(user, api_url))["module_pubkey"])

    # ----- what gets paid ---------------------------------------------------------------
    async def plain_invoice(self, node: Any) -> str:
        return str((await self.rpc(node, "invoice", [AMOUNT_MSAT, self.label(), "bench"]))["bolt11"])

    async def receive_invoice(self, fed: int) -> str:
        user = self.users[fed]
        if user.client.major == 1:
            receive = await wallet_ln.receive_v1(user, self.keys[fed], AMOUNT_MSAT, "bench")
        else:
            receive = await wallet_ln.receive_v2(user, self.net.api_url, AMOUNT_MSAT, "bench")
        return receive.bolt11

    async def peer_receive(self, fed: int) -> wallet_ln.Receive:
        """An invoice of a user of gateway B's federation `fed`."""
        user = self.peer_users[fed]
        if user.client.major == 1:
            return await wallet_ln.receive_v1(user, self.peer_keys[fed], AMOUNT_MSAT, "bench")
        return await wallet_ln.receive_v2(user, self.net.peer_api_url, AMOUNT_MSAT, "bench")

    async def xpay(self, node: Any, invoice: str) -> float:
        start = time.perf_counter()
        paid = await self.rpc(node, "xpay", {"invstring": invoice})
        elapsed = time.perf_counter() - start
        if "payment_preimage" not in paid:
            raise RuntimeError(f"xpay did not pay: {paid}")
        return elapsed

    async def send(self, fed: int, invoice: str | None = None, fee_msat: int | None = None) -> float:
        """The user funds a contract (untimed), then the gateway pays `invoice` (default: a fresh
        invoice of l3) and answers with the preimage (timed)."""
        user, key = self.users[fed], self.keys[fed]
        invoice = invoice or await self.plain_invoice(self.net.nodes[2])
        fee = gateway_fee(AMOUNT_MSAT) if fee_msat is None else fee_msat
        payment_hash = str((await self.rpc(self.net.gateway, "decode", [invoice]))["payment_hash"])
        cid, contract, refund_key = await wallet_ln.fund_outgoing(user, payment_hash, AMOUNT_MSAT + fee, key)
        body: dict[str, Any] = {"federation_id": user.federation_id, "contract_id": cid, "invoice": invoice}
        if user.client.major == 1:
            body["preimage_auth"] = hashlib.sha256(refund_key.secret).hexdigest()
            path = "/v1/pay_invoice"
        else:
            stored = user.store.get_contract(cid)
            body["contract"] = contract
            body["outpoint"] = {"txid": str(stored[1]["txid"]) if stored else "", "out_idx": 0}
            body["auth"] = sign(refund_key, SEND_AUTH_PURPOSE, {"contract_id": cid, "invoice": invoice})
            path = "/v1/send_payment"
        start = time.perf_counter()
        async with self.session.post(self.net.api_url + path, json=body) as resp:
            answer = await resp.json()
        elapsed = time.perf_counter() - start
        if "preimage" not in answer:
            raise RuntimeError(f"send through federation {fed} failed: {answer}")
        return elapsed

    # ----- scenarios -----------------------------------------------------------------
    async def interleaved(
        self, name: str, count: int, runs: dict[str, Callable[[], Awaitable[float]]]
    ) -> dict[str, list[float]]:
        """`count` rounds, each timing one payment of every variant in turn."""
        out: dict[str, list[float]] = {k: [] for k in runs}
        for i in range(count):
            for key, run in runs.items():
                out[key].append(await run())
            self.tick(f"{name}: {i + 1}/{count}")
        return out

    async def forwards(self, count: int) -> list[Row]:
        l1, _, l3, _, l5 = self.net.nodes[:5]

        async def via(payee: Any) -> float:
            return await self.xpay(l1, await self.plain_invoice(payee))

        got = await self.interleaved(
            "1 forwards", count, {"with plugin": lambda: via(l3), "without": lambda: via(l5)}
        )
        base = "1 forward l1->l4->l5 (no plugin)"
        return [
            _row("1 forwards", base, got["without"], None, None, ""),
            _row(
                "1 forwards",
                "1 forward l1->l2->l3 (plugin, 4 fed)",
                got["with plugin"],
                base,
                got["without"],
                "<= 1.10",
            ),
        ]

    async def receives(self, count: int) -> list[Row]:
        l1, l2 = self.net.payer, self.net.gateway

        async def plain() -> float:
            return await self.xpay(l1, await self.plain_invoice(l2))

        async def receive(fed: int) -> float:
            return await self.xpay(l1, await self.receive_invoice(fed))

        got = await self.interleaved(
            "2 receives", count, {"base": plain, "v1": lambda: receive(0), "v2": lambda: receive(1)}
        )
        base = "2 plain 1-hop invoice l1->l2"
        return [
            _row("2 receive", base, got["base"], None, None, ""),
            _row(
                "2 receive", "2 receive v1 (l1 -> fake scid -> fed)", got["v1"], base, got["base"], "<= 1.5"
            ),
            _row(
                "2 receive",
                "2 receive v2 (l1 -> gateway invoice -> fed)",
                got["v2"],
                base,
                got["base"],
                "<= 1.5",
            ),
        ]

    async def sends(self, count: int) -> list[Row]:
        l2, l3 = self.net.gateway, self.net.nodes[2]

        async def plain() -> float:
            return await self.xpay(l2, await self.plain_invoice(l3))

        got = await self.interleaved(
            "3 sends", count, {"base": plain, "v1": lambda: self.send(0), "v2": lambda: self.send(1)}
        )
        base = "3 plain 1-hop payment l2->l3"
        note = "timed: gateway request -> preimage (xpay; the claim follows); contract funding untimed"
        return [
            _row("3 send", base, got["base"], None, None, ""),
            _row("3 send", "3 send v1 (fed -> l2 -> l3)", got["v1"], base, got["base"], "<= 1.5", note),
            _row("3 send", "3 send v2 (fed -> l2 -> l3)", got["v2"], base, got["base"], "<= 1.5", note),
        ]

    async def swaps(self, count: int) -> list[Row]:
        """Scenario 4: a user of one federation pays a user of another on the same gateway."""
        l1, l2 = self.net.payer, self.net.gateway

        async def plain() -> float:
            return await self.xpay(l1, await self.plain_invoice(l2))

        async def swap(src: int, dst: int) -> float:
            return await self.send(src, await self.receive_invoice(dst), gateway_fee(AMOUNT_MSAT))

        v1 = [i for i, a in enumerate(FEDERATION_APIS) if a == "1"]
        v2 = [i for i, a in enumerate(FEDERATION_APIS) if a == "2"]
        pairs = {
            "v1->v1": (v1[0], v1[1]),
            "v1->v2": (v1[0], v2[0]),
            "v2->v1": (v2[0], v1[0]),
            "v2->v2": (v2[0], v2[1]),
        }
        runs: dict[str, Callable[[], Awaitable[float]]] = {"base": plain}
        for name, (src, dst) in pairs.items():
            runs[name] = lambda src=src, dst=dst: swap(src, dst)  # type: ignore[misc]
        got = await self.interleaved("4 swaps", count, runs)
        base = "4 plain 1-hop invoice l1->l2"
        note = "timed: the sender's request -> preimage (no Lightning hop); contract funding untimed"
        return [_row("4 swap", base, got["base"], None, None, "")] + [
            _row("4 swap", f"4 swap {name}", got[name], base, got["base"], "<= 0.5", note) for name in pairs
        ]

    async def peers(self, count: int) -> list[Row]:
        """Scenario 5: a user of a federation on gateway A pays a user of a federation on gateway B,
        forwarded over the peer protocol (no HTLC), vs A's node paying B's node over their channel."""
        a, b = self.net.gateway, self.net.peer_gateway
        forwarded: list[str] = []

        async def plain() -> float:
            return await self.xpay(a, await self.plain_invoice(b))

        async def forward(src: int, dst: int) -> float:
            receive = await self.peer_receive(dst)
            forwarded.append(receive.payment_hash)  # both gateways charge their fee
            return await self.send(src, receive.bolt11, 2 * gateway_fee(AMOUNT_MSAT))

        a_v1, a_v2 = FEDERATION_APIS.index("1"), FEDERATION_APIS.index("2")
        b_v1, b_v2 = PEER_FEDERATION_APIS.index("1"), PEER_FEDERATION_APIS.index("2")
        pairs = {"A v1 -> B v2": (a_v1, b_v2), "A v2 -> B v1": (a_v2, b_v1)}
        runs: dict[str, Callable[[], Awaitable[float]]] = {"base": plain}
        for name, (src, dst) in pairs.items():
            runs[name] = lambda src=src, dst=dst: forward(src, dst)  # type: ignore[misc]
        before = [len((await self.rpc(n, "listforwards"))["forwards"]) for n in (a, b)]
        got = await self.interleaved("5 peer forwards", count, runs)
        check = await self._check_forwarded(forwarded, before)
        base = "5 plain payment gateway A -> gateway B (l2->l6)"
        note = "timed: the sender's request to A -> preimage (A -> B over the peer protocol); " + check
        rows = [_row("5 peer", base, got["base"], None, None, "")] + [
            _row("5 peer", f"5 peer forward {name}", got[name], base, got["base"], "<= 0.8", note)
            for name in pairs
        ]
        at_b = await self._elapsed_at(b, set(forwarded))
        if at_b:
            rows.append(
                Row(
                    "5 peer",
                    "5 of which at gateway B: forward accepted -> preimage",
                    "ms",
                    Summary.of(at_b),
                    note="from B's payment journal (elapsed_ms), both pairs",
                )
            )
        return rows

    async def _elapsed_at(self, node: Any, hashes: set[str]) -> list[float]:
        """The gateway's own elapsed time (payment journal) of the payments with these hashes."""
        payments = (await self.rpc(node, "fedimint-payments", {"limit": 1000}))["payments"]
        return [float(p["elapsed_ms"]) for p in payments if p["payment_hash"] in hashes and "elapsed_ms" in p]

    async def _check_forwarded(self, hashes: list[str], forwards_before: list[int]) -> str:
        """Every timed payment went over the peer protocol (none fell back to Lightning, no HTLC
        crossed a gateway node), then A settles the credit line over Lightning (untimed)."""
        a, b = self.net.gateway, self.net.peer_gateway
        for _ in range(600):  # the user's answer comes before the gateway's claim: let claims finish
            payments = (await self.rpc(a, "fedimint-payments", {"limit": 1000}))["payments"]
            if not any(p["state"] == "claiming" for p in payments):
                break
            await asyncio.sleep(0.05)
        kinds = {p["payment_hash"]: (p["kind"], p["state"]) for p in payments}
        wrong = {h: kinds.get(h) for h in hashes if kinds.get(h) != ("peer", "succeeded")}
        if wrong:
            raise RuntimeError(f"{len(wrong)} of {len(hashes)} payments were not peer forwards: {wrong}")
        after = [len((await self.rpc(n, "listforwards"))["forwards"]) for n in (a, b)]
        if after != forwards_before:
            raise RuntimeError(f"Lightning forwards on the gateway nodes during scenario 5: {after}")
        owed = -int((await self.rpc(a, "fedimint-peer-list"))["peers"][0]["balance_msat"])
        settled = await self.rpc(a, "fedimint-peer-settle", {"node_id": b.info["id"]})
        if settled.get("state") != "done" or settled.get("balance_msat") != 0:
            raise RuntimeError(f"settling the credit line failed: {settled}")
        return f"all {len(hashes)} were peer forwards; A then settled {owed} msat over Lightning"

    async def throughput(self, counts: RegtestCounts) -> list[Row]:
        """Scenario 6: receives over 4 federations, `in_flight` at a time, vs plain payments."""
        l2 = self.net.gateway
        n = counts.throughput
        plain = [await self.plain_invoice(l2) for _ in range(n)]
        receives = []
        for i in range(n):
            receives.append(await self.receive_invoice(i % len(self.users)))
            if i % 20 == 19:
                self.tick(f"6 throughput: {i + 1}/{n} invoices made")
        base_lat, base_rate = await self._fire("6 plain payments l1->l2", plain, counts.in_flight)
        lat, rate = await self._fire("6 receives over 4 fed", receives, counts.in_flight)
        base = f"6 plain payments l1->l2, {counts.in_flight} in flight"
        return [
            Row("6 throughput", base, "ms", Summary.of(base_lat), rate=base_rate),
            Row(
                "6 throughput",
                f"6 receives over 4 fed, {counts.in_flight} in flight",
                "ms",
                Summary.of(lat),
                rate=rate,
                baseline=base,
                ratio=ratio(rate, base_rate),
                target=">= 0.7 (throughput)",
            ),
        ]

    async def _fire(self, label: str, invoices: list[str], in_flight: int) -> tuple[list[float], float]:
        """Pay every invoice from l1, `in_flight` at a time: latencies (ms) and payments/s."""
        sem = asyncio.Semaphore(in_flight)
        lat: list[float] = []

        async def one(inv: str) -> None:
            async with sem:
                lat.append(await self.xpay(self.net.payer, inv) * 1000)
                self.tick(f"{label}: {len(lat)}/{len(invoices)}")

        start = time.perf_counter()
        await asyncio.gather(*(one(inv) for inv in invoices))
        return lat, len(invoices) / (time.perf_counter() - start)

    def plugin_memory(self, label: str) -> Row | None:
        pid = self.net.plugin_pid()
        if pid is None:
            return None
        mem = rss_kb(pid)
        return Row(
            group="memory",
            name=f"plugin in lightningd: {label}",
            unit="MB",
            summary=Summary.of([mem["VmRSS"] / 1024]),
            note=f"peak {mem['VmHWM'] / 1024:.1f} MB",
        )


def pending_rows() -> list[Row]:
    """Scenarios whose flows are not implemented yet (none left; kept for a future scenario)."""
    return []


async def run_regtest(net: Network, counts: RegtestCounts, only: str | None, tick: Tick) -> list[Row]:
    """Every regtest scenario (or those whose group starts with `only`) on a started network."""
    rows: list[Row] = []

    def want(group: str) -> bool:
        return selected(only, group)

    async with aiohttp.ClientSession() as session:
        sc = Scenarios(net, session, tick)
        idle = sc.plugin_memory("idle, no federation")
        net.start_federations()
        tick("federations started")
        throughput_share = counts.throughput // len(net.feds) + 2
        await sc.setup(
            [  # receives and swap targets each take one note (see bench.flows.split_liquidity)
                2 * counts.per_flow + throughput_share + 2,
                2 * counts.per_flow + throughput_share + 2,
                counts.per_flow + throughput_share + 1,
                counts.per_flow + throughput_share + 1,
            ]
        )
        with_feds = sc.plugin_memory(f"{len(net.feds)} federations connected")
        rows += [r for r in (idle, with_feds) if r is not None and want("memory")]
        if want("5 peer"):
            net.start_peer_federations()
            await sc.setup_peers(counts.per_flow + 2)  # each forward takes one note of B's
        if want("1 forwards"):
            rows += await sc.forwards(counts.per_flow)
        if want("2 receive"):
            rows += await sc.receives(counts.per_flow)
        if want("3 send"):
            rows += await sc.sends(counts.per_flow)
        if want("4 swap"):
            rows += await sc.swaps(counts.per_flow)
        if want("5 peer"):
            rows += await sc.peers(counts.per_flow)
        if want("7 fedimint"):
            rows += await FedimintScenario(net, sc.rpc, tick).run(counts.per_flow)
        rows += [r for r in pending_rows() if want(r.group)]
        if want("6 throughput"):
            rows += await sc.throughput(counts)
    return rows
