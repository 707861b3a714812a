"""The scripted demo: one payment of each kind that exists today, as a table and as ``demo.json``."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from coincurve import PrivateKey

from contrib.regtest.lightning import Node, node
from contrib.regtest.state import DEMO_FILE, NetworkState
from contrib.regtest.users import WalletUser, claim_id
from fedimint_gw.lightning import bolt11

PAID = "paid"
REFUNDED = "refunded"
UNAVAILABLE = "unavailable"
SKIPPED = "skipped"


@dataclass(frozen=True)
class Row:
    """One demo payment. ``fee_msat`` is what the sender paid beyond what the receiver got."""

    kind: str
    source: str
    target: str
    path: str
    expected: str
    amount_msat: int | None = None
    fee_msat: int | None = None
    latency_ms: int | None = None
    result: str = ""
    detail: str = ""

    @property
    def ok(self) -> bool:
        """Whether the payment ended as expected (unavailable kinds are not failures)."""
        return self.result == self.expected

    def to_dict(self) -> dict[str, object]:
        """JSON form (``demo.json``)."""
        return {**asdict(self), "ok": self.ok}


class Demo:
    """Runs the payments against a started network."""

    def __init__(self, state: NetworkState) -> None:
        self.state = state
        self.payer = node(state, "payer")

    def _user(self, fed: str) -> WalletUser:
        return WalletUser(Path(self.state.wallets[f"user-{fed}"]["path"]))

    def _gateway(self, fed: str) -> tuple[str, str, str]:
        """(gateway name, node id, API URL) of the gateway serving federation ``fed``."""
        gw = str(self.state.federations[fed]["gateway"])
        info = self.state.nodes[gw]
        return gw, str(info["id"]), str(info["api_url"])

    def _fee_budget(self, fed: str, amount_msat: int) -> int:
        fees = self.state.federations[fed]["fees"]
        return int(fees["base_msat"]) + amount_msat * int(fees["ppm"]) // 1_000_000

    def row(self, kind: str, source: str, target: str, fed: str, expected: str, amount_msat: int) -> Row:
        """A row not yet run: the path names the gateway serving ``fed``."""
        gw = str(self.state.federations[fed]["gateway"])
        return Row(kind, source, target, f"Lightning via {gw.upper()}", expected, amount_msat)

    def receive(self, row: Row, fed: str) -> Row:
        """The payer node pays a user's invoice through the gateway; the user claims the ecash."""
        amount = row.amount_msat or 0
        _, node_id, api_url = self._gateway(fed)
        user = self._user(fed)
        receive = user.receive(node_id, api_url, amount, f"regtest demo: into {fed}")
        start = time.monotonic()
        paid = self.payer.call("xpay", invstring=receive.bolt11)
        latency = int((time.monotonic() - start) * 1000)
        preimage = bytes.fromhex(str(paid["payment_preimage"]))
        if hashlib.sha256(preimage).hexdigest() != receive.payment_hash:
            return replace(row, latency_ms=latency, result="failed", detail="wrong preimage")
        got = user.claim(claim_id(receive))
        fee = int(paid["amount_sent_msat"]) - got
        return replace(row, fee_msat=fee, latency_ms=latency, result=PAID, detail=f"user got {got} msat")

    def send(self, row: Row, fed: str, invoice: str | None = None) -> Row:
        """A user pays an invoice through the gateway (a fresh payer-node invoice, or ``invoice``)."""
        amount = row.amount_msat or 0
        _, node_id, api_url = self._gateway(fed)
        label = f"demo-{fed}-{secrets.token_hex(4)}"
        if invoice is None:
            made = self.payer.call("invoice", amount_msat=amount, label=label, description=label)
            invoice = str(made["bolt11"])
        user = self._user(fed)
        key = user.gateway_key(node_id, api_url)
        before = user.balance()
        start = time.monotonic()
        answer = user.pay(invoice, api_url, key, self._fee_budget(fed, amount))
        latency = int((time.monotonic() - start) * 1000)
        spent = before - user.balance()
        if "preimage" in answer:
            found = self.payer.call("listinvoices", label=label)["invoices"]
            settled = bool(found) and found[0]["status"] == "paid"
            return replace(
                row, fee_msat=spent - amount, latency_ms=latency, result=PAID if settled else "failed"
            )
        if "refunded_msat" in answer:
            detail = f"refunded {answer['refunded_msat']} msat"
            return replace(row, fee_msat=spent, latency_ms=latency, result=REFUNDED, detail=detail)
        return replace(row, latency_ms=latency, result="pending", detail=json.dumps(answer))

    def swap(self, row: Row, source: str, target: str) -> Row:
        """A user of ``source`` pays a user of ``target`` on the same gateway: no Lightning hop."""
        amount = row.amount_msat or 0
        _, node_id, api_url = self._gateway(target)
        receiver = self._user(target)
        receive = receiver.receive(node_id, api_url, amount, f"regtest demo: swap into {target}")
        _, src_node, src_api = self._gateway(source)
        sender = self._user(source)
        key = sender.gateway_key(src_node, src_api)
        gateway = node(self.state, str(self.state.federations[source]["gateway"]))
        forwards_before = len(gateway.call("listforwards")["forwards"])
        before = sender.balance()
        start = time.monotonic()
        answer = sender.pay(receive.bolt11, src_api, key, self._fee_budget(target, amount))
        latency = int((time.monotonic() - start) * 1000)
        if "preimage" not in answer:
            return replace(row, latency_ms=latency, result="failed", detail=json.dumps(answer))
        got = receiver.claim(claim_id(receive))
        no_htlc = len(gateway.call("listforwards")["forwards"]) == forwards_before
        spent = before - sender.balance()
        detail = f"user got {got} msat" + ("" if no_htlc else "; a Lightning forward happened!")
        return replace(
            row, fee_msat=spent - got, latency_ms=latency, result=PAID if no_htlc else "failed", detail=detail
        )

    def peer(self, row: Row, source: str, target: str) -> Row:
        """A user on gateway A pays a user on gateway B: a peer forward, no HTLC on any channel."""
        amount = row.amount_msat or 0
        _, node_id, api_url = self._gateway(target)
        receiver = self._user(target)
        receive = receiver.receive(node_id, api_url, amount, f"regtest demo: peer forward into {target}")
        src_gw, src_node, src_api = self._gateway(source)
        sender = self._user(source)
        key = sender.gateway_key(src_node, src_api)
        gateways = [
            node(self.state, src_gw),
            node(self.state, str(self.state.federations[target]["gateway"])),
        ]
        forwards_before = [len(g.call("listforwards")["forwards"]) for g in gateways]
        before = sender.balance()
        start = time.monotonic()
        answer = sender.pay(receive.bolt11, src_api, key, 2 * self._fee_budget(source, amount))
        latency = int((time.monotonic() - start) * 1000)
        if "preimage" not in answer:
            return replace(row, latency_ms=latency, result="failed", detail=json.dumps(answer))
        got = receiver.claim(claim_id(receive))
        no_htlc = [len(g.call("listforwards")["forwards"]) for g in gateways] == forwards_before
        payments = gateways[0].call("fedimint-payments", limit=5)["payments"]
        forwarded = any(p["kind"] == "peer" and p["payment_hash"] == receive.payment_hash for p in payments)
        spent = before - sender.balance()
        detail = f"user got {got} msat" + ("" if no_htlc else "; a Lightning forward happened!")
        ok = no_htlc and forwarded
        return replace(
            row, fee_msat=spent - got, latency_ms=latency, result=PAID if ok else "failed", detail=detail
        )

    def migrate(self, row: Row, source: str, target: str) -> Row:
        """Gateway A moves its own ecash from ``source`` to ``target`` by exchanging it with B."""
        amount = row.amount_msat or 0
        src, dst = (str(self.state.federations[k]["federation_id"]) for k in (source, target))
        gateway = node(self.state, str(self.state.federations[source]["gateway"]))
        before = _ecash(gateway, dst)
        forwards_before = len(gateway.call("listforwards")["forwards"])
        start = time.monotonic()
        answer = gateway.call("fedimint-migrate", from_federation=src, to_federation=dst, amount_msat=amount)
        latency = int((time.monotonic() - start) * 1000)
        arrived = _ecash(gateway, dst) - before
        no_htlc = len(gateway.call("listforwards")["forwards"]) == forwards_before
        ok = answer.get("state") == "succeeded" and arrived == answer.get("received_msat") and no_htlc
        detail = f"{arrived} msat arrived in {target}, {answer.get('chunks')} chunk(s)"
        if not ok:
            detail = json.dumps(answer)
        return replace(
            row,
            fee_msat=answer.get("fee_msat"),
            latency_ms=latency,
            result=PAID if ok else "failed",
            detail=detail,
        )

    def run(self) -> list[Row]:
        """Every row, in order; a row that raises is recorded as failed, not fatal."""
        plan: list[tuple[Row, Callable[[Row], Row]]] = [
            (self.row("Lightning -> federation v1", "payer node", "user-v1", "v1", PAID, 21_000_000),
             lambda r: self.receive(r, "v1")),
            (self.row("Lightning -> federation v2", "payer node", "user-v2", "v2", PAID, 21_000_000),
             lambda r: self.receive(r, "v2")),
            (self.row("federation v1 -> Lightning", "user-v1", "payer node", "v1", PAID, 10_000_000),
             lambda r: self.send(r, "v1")),
            (self.row("federation v2 -> Lightning", "user-v12", "payer node", "v12", PAID, 10_000_000),
             lambda r: self.send(r, "v12")),
            (self.row("failing payment, refunded", "user-v2", "unroutable", "v2", REFUNDED, 5_000_000),
             lambda r: self.send(r, "v2", unroutable_invoice(5_000_000))),
            (Row("swap v1 -> v1+v2 (on A)", "user-v1", "user-v12", "swap (no Lightning)", PAID, 7_000_000),
             lambda r: self.swap(r, "v1", "v12")),
            (Row("peer forward A -> B", "user-v1", "user-v2", "peer", PAID, 7_000_000),
             lambda r: self.peer(r, "v1", "v2")),
            (Row("migrate A's ecash v1 -> v1+v2", "gateway A", "gateway A", "exchange with B", PAID,
                 50_000_000),
             lambda r: self.migrate(r, "v1", "v12")),
        ]  # fmt: skip
        rows = []
        for row, step in plan:
            try:
                rows.append(step(row))
            except Exception as exc:  # recorded in the table; the network stays up for inspection
                rows.append(replace(row, result="failed", detail=f"{type(exc).__name__}: {exc}"))
        return rows


def _ecash(gateway: Node, federation_id: str) -> int:
    feds = gateway.call("fedimint-balances")["federations"]
    return int(next(f["ecash_msat"] for f in feds if f["federation_id"] == federation_id))


def unroutable_invoice(amount_msat: int) -> str:
    """A valid regtest invoice from a random node nobody has a channel with."""
    content = bolt11.InvoiceContent(
        currency="bcrt",
        amount_msat=amount_msat,
        timestamp=int(time.time()),
        payment_hash=secrets.token_bytes(32),
        payment_secret=secrets.token_bytes(32),
        description="regtest demo: nobody can route here",
        features=bolt11.DEFAULT_FEATURES,
    )
    return bolt11.sign_with_key(bolt11.encode_unsigned(content), PrivateKey())


def _amount(msat: int | None) -> str:
    return "" if msat is None else f"{msat / 1000:,.3f}".rstrip("0").rstrip(".")


def table(rows: list[Row]) -> str:
    """The rows as a plain-text table (amounts and fees in sat)."""
    head = ("kind", "from", "to", "amount sat", "fee sat", "path", "latency", "result")
    body = [
        (
            r.kind,
            r.source,
            r.target,
            _amount(r.amount_msat),
            _amount(r.fee_msat),
            r.path,
            "" if r.latency_ms is None else f"{r.latency_ms} ms",
            r.detail
            if r.result in (UNAVAILABLE, SKIPPED)
            else (r.result + ("" if r.ok else f": {r.detail}")),
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    right = {3, 4, 6}

    def fmt(line: tuple[str, ...]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(head), rule, *(fmt(b) for b in body)])


def run_demo(state: NetworkState, *extra: Callable[[NetworkState], list[Row]]) -> tuple[list[Row], Path]:
    """Run the demo (then the ``extra`` row groups) and write ``demo.json``; returns rows and file."""
    rows = Demo(state).run()
    for group in extra:
        rows += group(state)
    out = state.base / DEMO_FILE
    data = {
        "ok": all(r.ok for r in rows),
        "finished_at": int(time.time()),
        "rows": [r.to_dict() for r in rows],
    }
    out.write_text(json.dumps(data, indent=2) + "\n")
    return rows, out
