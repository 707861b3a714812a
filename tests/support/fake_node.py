"""A fake LightningNode for e2e tests, and lightningd-shaped htlc_accepted payloads."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from coincurve import PrivateKey

from fedimint_gw.domain.amount import Msat
from fedimint_gw.domain.ids import ShortChannelId
from fedimint_gw.lightning import bolt11
from fedimint_gw.lightning._bech32_words import bech32_split
from fedimint_gw.lightning.node import HtlcFate, Liquidity, NodeInfo, PaymentOutcome, PaymentStatus

PayScript = Callable[[bolt11.Invoice], PaymentOutcome]


@dataclass
class FakeNode:
    """Behaves like lightningd for the calls the gateway makes. Payments succeed when the
    test registered the payee's preimage (`payees`), fail otherwise, or follow `script`."""

    key: PrivateKey = field(default_factory=PrivateKey)
    block_height: int = 200
    payees: dict[str, bytes] = field(default_factory=dict)  # payment hash -> preimage
    script: PayScript | None = None
    sent: dict[str, PaymentOutcome] = field(default_factory=dict)
    pay_calls: list[str] = field(default_factory=list)
    channels: set[ShortChannelId] = field(default_factory=set)
    own_hashes: set[str] = field(default_factory=set)  # payment hashes of this node's invoices
    slow_mode: bool = True  # `xpay-slow-mode`
    developer: bool = False  # lightningd `--developer`

    @property
    def node_id(self) -> str:
        return self.key.public_key.format().hex()

    def add_payee(self, preimage: bytes) -> str:
        h = hashlib.sha256(preimage).hexdigest()
        self.payees[h] = preimage
        return h

    async def info(self) -> NodeInfo:
        return NodeInfo(self.node_id, "fake", "regtest", self.block_height, "fake-v26")

    spendable_msat: int = 10_000_000  # 0: the channels are not connected (yet); payments fail

    async def liquidity(self) -> Liquidity:
        return Liquidity(Msat(self.spendable_msat), Msat(20_000_000), 1000)

    async def channel_scids(self) -> set[ShortChannelId]:
        return set(self.channels)

    held: set[tuple[str, int]] = field(default_factory=set)  # incoming HTLCs "lightningd" still holds
    failed_htlcs: set[tuple[str, int]] = field(default_factory=set)  # failed though answered `resolve`
    aliases: list[set[str]] = field(default_factory=list)  # the names of each channel (scid, aliases)

    async def channel_names(self, scid: str) -> set[str]:
        return next((set(names) for names in self.aliases if scid in names), {scid})

    async def incoming_htlcs(self) -> set[tuple[str, int]]:
        return set(self.held)

    async def channel_moves_index(self) -> int:
        return 0

    async def incoming_htlc_fate(
        self, scid: str, htlc_id: int, payment_hash: str, moves_from: int = 0
    ) -> HtlcFate:
        if (scid, htlc_id) in self.held:
            return HtlcFate.PENDING
        return HtlcFate.FAILED if (scid, htlc_id) in self.failed_htlcs else HtlcFate.FULFILLED

    async def decode(self, invoice: str) -> dict[str, Any]:
        inv = bolt11.decode(invoice)
        return {"valid": True, "payment_hash": inv.payment_hash.hex(), "amount_msat": inv.amount_msat}

    async def sign_invoice(self, unsigned_invoice: str) -> str:
        hrp, words = bech32_split(unsigned_invoice)
        return bolt11.sign_with_key(bolt11.UnsignedInvoice(hrp, tuple(words[:-104])), self.key)

    async def has_invoice(self, payment_hash: str) -> bool:
        """Invoices made with `create_invoice` (their preimage is in `payees`, hash in `own_hashes`)."""
        return payment_hash in self.own_hashes

    async def xpay_waits_for_all_parts(self) -> bool:
        return self.slow_mode

    async def developer_mode(self) -> bool:
        return self.developer

    async def pay(self, invoice: str, max_fee: Msat, max_delay: int) -> PaymentOutcome:
        await asyncio.sleep(0)
        inv = bolt11.decode(invoice)
        h = inv.payment_hash.hex()
        self.pay_calls.append(h)
        if self.script is not None:
            outcome = self.script(inv)
        elif self.spendable_msat < (inv.amount_msat or 0):
            outcome = PaymentOutcome(
                PaymentStatus.FAILED, reason="no route: channels down (fake)", attempts=0
            )
        elif h in self.payees:
            outcome = PaymentOutcome(
                PaymentStatus.SUCCEEDED, self.payees[h], Msat(inv.amount_msat or 0), attempts=1
            )
        else:
            outcome = PaymentOutcome(PaymentStatus.FAILED, reason="no route (fake)", attempts=1)
        if outcome.status is not PaymentStatus.PENDING:
            self.sent[h] = outcome
        return outcome

    async def payment_status(self, payment_hash: str, xpay_gone: bool = False) -> PaymentOutcome:
        return self.sent.get(payment_hash, PaymentOutcome(PaymentStatus.FAILED, reason="no attempt"))

    async def make_secret(self, label: str) -> bytes:
        return hashlib.sha256(self.key.secret + label.encode()).digest()

    async def sign_message(self, message: str) -> str:
        return self.key.sign(message.encode()).hex()

    invoices: dict[str, str] = field(default_factory=dict)  # label -> bolt11

    async def create_invoice(self, amount: Msat, label: str, description: str) -> str:
        """Our own invoice; its preimage goes into `payees`, so a node sharing that dict can pay it."""
        if label in self.invoices:
            return self.invoices[label]
        import secrets as _secrets
        import time as _time

        preimage = _secrets.token_bytes(32)
        content = bolt11.InvoiceContent(
            currency="bcrt",
            amount_msat=amount.value,
            timestamp=int(_time.time()),
            payment_hash=hashlib.sha256(preimage).digest(),
            payment_secret=_secrets.token_bytes(32),
            description=description,
            features=bolt11.DEFAULT_FEATURES,
        )
        self.payees[hashlib.sha256(preimage).hexdigest()] = preimage
        self.own_hashes.add(hashlib.sha256(preimage).hexdigest())
        self.invoices[label] = bolt11.sign_with_key(bolt11.encode_unsigned(content), self.key)
        return self.invoices[label]

    async def check_message(self, message: str, zbase: str, node_id: str) -> bool:
        from coincurve import PublicKey

        try:
            return bool(PublicKey(bytes.fromhex(node_id)).verify(bytes.fromhex(zbase), message.encode()))
        except ValueError:
            return False


def forward_payload(
    fake_scid: str,
    payment_hash: str,
    forward_msat: int,
    amount_msat: int,
    cltv_expiry: int,
    height: int,
    htlc_id: int = 0,
    incoming_scid: str = "103x1x0",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(onion, htlc) as lightningd sends them for an HTLC forwarded to a fake scid."""
    onion = {
        "payload": "1a02080000000000000000040400000000",
        "short_channel_id": fake_scid,
        "forward_msat": forward_msat,
        "outgoing_cltv_value": cltv_expiry - 40,
        "next_onion": "00" * 1366,
        "shared_secret": "11" * 32,
    }
    return onion, _htlc(incoming_scid, htlc_id, amount_msat, cltv_expiry, height, payment_hash)


def final_payload(
    payment_hash: str,
    payment_secret: str,
    amount_msat: int,
    total_msat: int,
    cltv_expiry: int,
    height: int,
    htlc_id: int = 0,
    incoming_scid: str = "103x1x0",
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(onion, htlc) as lightningd sends them for a final-hop HTLC with no invoice in lightningd."""
    onion = {
        "payload": "2c02080000000000000000040400000000",
        "total_msat": total_msat,
        "payment_secret": payment_secret,
        "shared_secret": "22" * 32,
    }
    return onion, _htlc(incoming_scid, htlc_id, amount_msat, cltv_expiry, height, payment_hash)


def _htlc(
    incoming_scid: str, htlc_id: int, amount_msat: int, cltv_expiry: int, height: int, payment_hash: str
) -> dict[str, Any]:
    """The hook's `htlc` object."""
    return {
        "short_channel_id": incoming_scid,
        "id": htlc_id,
        "amount_msat": amount_msat,
        "cltv_expiry": cltv_expiry,
        "cltv_expiry_relative": cltv_expiry - height,
        "payment_hash": payment_hash,
        "extra_tlvs": "",
    }


@dataclass
class FakeLightningd:
    """lightningd's side of the payment calls `ClnNode` makes, for testing that layer: xpay
    can answer an error while parts stay in flight (as it does without `xpay-slow-mode`, e.g.
    203 once one part failed at the payee, 209 on a timeout), and listsendpays shows the parts."""

    parts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # hash -> listsendpays
    xpay_error: tuple[int, str] | None = None
    slow_mode: bool | None = False  # None: the option does not exist
    calls: list[str] = field(default_factory=list)
    xpay_release: threading.Event | None = None  # when set: xpay blocks until the event is set
    channels: list[dict[str, Any]] = field(default_factory=list)  # listpeerchannels' entries
    htlcs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # listhtlcs by channel name
    moves: list[dict[str, Any]] = field(default_factory=list)  # listchannelmoves (created_index set)
    params: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def add_part(self, payment_hash: str, status: str, created_at: int, preimage: str = "") -> None:
        part: dict[str, Any] = {"status": status, "created_at": created_at, "amount_sent_msat": 1000}
        if preimage:
            part["payment_preimage"] = preimage
        self.parts.setdefault(payment_hash, []).append(part)

    def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        from pyln.client import RpcError

        self.calls.append(method)
        self.params.append((method, dict(params)))
        if method == "listhtlcs":
            if str(params.get("id")) not in self.htlcs:
                raise RpcError(method, params, {"code": -32602, "message": "Unknown channel"})
            return {"htlcs": list(self.htlcs[str(params["id"])])}
        if method == "listchannelmoves":
            start = int(params.get("start", 0))
            return {"channelmoves": [m for m in self.moves if m["created_index"] >= start]}
        if method == "wait" and params.get("subsystem") == "channelmoves":
            return {
                "subsystem": "channelmoves",
                "created": max((m["created_index"] for m in self.moves), default=0),
            }
        if method == "decode":
            inv = bolt11.decode(str(params["string"]))
            return {"valid": True, "payment_hash": inv.payment_hash.hex()}
        if method == "listsendpays":
            return {"payments": list(self.parts.get(str(params["payment_hash"]), []))}
        if method == "listconfigs":
            if self.slow_mode is None:
                raise RpcError(method, params, {"code": -32602, "message": "Unknown config option"})
            return {"configs": {"xpay-slow-mode": {"value_bool": self.slow_mode, "source": "default"}}}
        if method == "listpeerchannels":
            return {"channels": list(self.channels)}
        if method == "getinfo":
            return {"id": "02" + "11" * 32, "alias": "fake", "network": "regtest", "blockheight": 200}
        if method == "xpay" and self.xpay_release is not None:
            self.xpay_release.wait()
        if method == "xpay" and self.xpay_error is not None:
            code, message = self.xpay_error
            raise RpcError(method, params, {"code": code, "message": message})
        raise AssertionError(f"FakeLightningd has no answer for {method}")


def cln_node_on(lightningd: FakeLightningd) -> Any:
    """A real `ClnNode` whose RPC calls `lightningd` answers."""
    from fedimint_gw.lightning.cln import ClnNode

    class _Node(ClnNode):
        def _rpc(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
            return lightningd.call(method, params)

    return _Node("/nonexistent/lightning-rpc")
