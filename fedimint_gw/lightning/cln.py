"""`LightningNode` over Core Lightning's JSON-RPC, with typed wrappers of the calls we use.

Each call opens its own connection in a worker thread: the loop is never blocked, and no
client state is shared between threads. Calls that can take minutes (`xpay`, the payment
itself) run in their own bounded pool, so any number of stuck payments never delays the short
calls (`getinfo`, `checkmessage`, ...) every owned HTLC and peer request needs: those have a
pool of their own.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pyln.client import LightningRpc, RpcError

from fedimint_gw.domain.amount import Msat
from fedimint_gw.domain.ids import ShortChannelId
from fedimint_gw.errors import InvalidInput, LightningFailure
from fedimint_gw.lightning.node import HtlcFate, Liquidity, NodeInfo, PaymentOutcome, PaymentStatus

_XPAY_ALREADY_PAID = 219  # xpay error codes are in doc/schemas/xpay.json
# How long xpay keeps trying new routes (passed to it explicitly). Until that has passed since
# a payment's first part, "every part failed" may only be a pause between two attempts.
XPAY_RETRY_FOR = 60
_RETRY_SLACK = 60
# Calls that may block until a payment resolves; everything else is a short call.
LONG_CALLS = frozenset({"xpay", "pay", "waitsendpay", "waitanyinvoice", "waitinvoice"})
HTLC_IN_REMOVED = "SENT_REMOVE_ACK_REVOCATION"  # listhtlcs: an incoming HTLC gone for good
SHORT_WORKERS = 8
LONG_WORKERS = 64  # payments in progress at once; more wait for a free worker


class ClnNode:
    """A `LightningNode` backed by lightningd's RPC socket. Long calls (xpay, which can block
    for minutes) run in their own thread pool, so that however many payments are in flight,
    the short calls a held HTLC needs (getinfo, listpeerchannels...) always get a thread."""

    def __init__(
        self, rpc_path: str, short_workers: int = SHORT_WORKERS, long_workers: int = LONG_WORKERS
    ) -> None:
        self._rpc_path = rpc_path
        self._short = ThreadPoolExecutor(short_workers, thread_name_prefix="cln-rpc")
        self._long = ThreadPoolExecutor(long_workers, thread_name_prefix="cln-rpc-long")

    def _rpc(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """One blocking call on a connection of its own (runs in a worker thread)."""
        result: dict[str, Any] = LightningRpc(self._rpc_path).call(method, params)
        return result

    async def _call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        pool = self._long if method in LONG_CALLS else self._short
        return await asyncio.get_running_loop().run_in_executor(pool, self._rpc, method, params or {})

    async def info(self) -> NodeInfo:
        r = await self._call("getinfo")
        return NodeInfo(
            node_id=r["id"],
            alias=r.get("alias", ""),
            network=r.get("network", ""),
            block_height=int(r.get("blockheight", 0)),
            version=r.get("version", ""),
        )

    async def liquidity(self) -> Liquidity:
        channels = (await self._call("listpeerchannels")).get("channels", [])
        funds = await self._call("listfunds")
        spendable = receivable = 0
        for ch in channels:
            if ch.get("state") == "CHANNELD_NORMAL" and ch.get("peer_connected", False):
                spendable += int(ch.get("spendable_msat", 0))
                receivable += int(ch.get("receivable_msat", 0))
        onchain = sum(
            int(o.get("amount_msat", 0)) // 1000
            for o in funds.get("outputs", [])
            if o.get("status") == "confirmed"
        )
        return Liquidity(Msat(spendable), Msat(receivable), onchain)

    async def channel_scids(self) -> set[ShortChannelId]:
        r = await self._call("listpeerchannels")
        found: set[ShortChannelId] = set()
        for ch in r.get("channels", []):
            for raw in (ch.get("short_channel_id"), *(ch.get("alias") or {}).values()):
                if raw:
                    found.add(ShortChannelId.parse(raw))
        return found

    async def channel_names(self, scid: str) -> set[str]:
        r = await self._call("listpeerchannels")
        for ch in r.get("channels", []):
            names = {str(n) for n in (ch.get("short_channel_id"), *(ch.get("alias") or {}).values()) if n}
            if scid in names:
                return names
        return {scid}

    async def incoming_htlcs(self) -> set[tuple[str, int]]:
        """Incoming HTLCs lightningd still holds. One in a removal state (`SENT_REMOVE_HTLC` ...)
        is already decided, fulfilled or failed (as when the plugin died with the HTLC held and
        lightningd failed it, waiting for the payer to reconnect): it is never replayed."""
        r = await self._call("listpeerchannels")
        held: set[tuple[str, int]] = set()
        for ch in r.get("channels", []):
            names = [ch.get("short_channel_id"), *(ch.get("alias") or {}).values()]
            for htlc in ch.get("htlcs", []):
                # One being removed (failed or fulfilled) is not held: it will not be replayed.
                if htlc.get("direction") == "in" and "REMOVE" not in str(htlc.get("state", "")):
                    held.update((str(n), int(htlc["id"])) for n in names if n)
        return held

    async def channel_moves_index(self) -> int:
        r = await self._call("wait", {"subsystem": "channelmoves", "indexname": "created", "nextvalue": 0})
        return int(r.get("created", 0))

    async def incoming_htlc_fate(
        self, scid: str, htlc_id: int, payment_hash: str, moves_from: int = 0
    ) -> HtlcFate:
        found: list[dict[str, Any]] = []
        for name in sorted(await self.channel_names(scid)):
            try:  # only this channel's HTLCs (lightningd keeps every HTLC of an open channel)
                htlcs = (await self._call("listhtlcs", {"id": name})).get("htlcs", [])
            except RpcError:  # not a name lightningd knows (any more): try the next one
                continue
            found = [
                h
                for h in htlcs
                if h.get("direction") == "in"
                and int(h.get("id", -1)) == htlc_id
                and h.get("payment_hash") == payment_hash
            ]
            if found:
                break
        if not found:
            return HtlcFate.UNKNOWN
        if found[0].get("state") != HTLC_IN_REMOVED:
            return HtlcFate.PENDING
        query: dict[str, Any] = {"index": "created", "start": moves_from} if moves_from > 0 else {}
        moves = (await self._call("listchannelmoves", query)).get("channelmoves", [])
        credited = any(
            m.get("payment_hash") == payment_hash and int(m.get("credit_msat", 0)) > 0 for m in moves
        )
        return HtlcFate.FULFILLED if credited else HtlcFate.FAILED

    async def decode(self, invoice: str) -> dict[str, Any]:
        try:
            r = await self._call("decode", {"string": invoice})
        except RpcError as exc:
            raise InvalidInput(f"lightningd cannot decode the invoice: {_rpc_message(exc)}") from None
        if not r.get("valid", False):
            raise InvalidInput(f"lightningd finds the invoice invalid: {r.get('warning_invalid', r)}")
        return r

    async def sign_invoice(self, unsigned_invoice: str) -> str:
        try:
            r = await self._call("signinvoice", {"invstring": unsigned_invoice})
        except RpcError as exc:
            raise LightningFailure(f"signinvoice failed: {_rpc_message(exc)}") from None
        return str(r["bolt11"])

    async def has_invoice(self, payment_hash: str) -> bool:
        r = await self._call("listinvoices", {"payment_hash": payment_hash})
        return bool(r.get("invoices"))

    async def xpay_waits_for_all_parts(self) -> bool:
        """Whether `xpay-slow-mode` is on: xpay then answers only once every part is final."""
        try:
            r = await self._call("listconfigs", {"config": "xpay-slow-mode"})
        except RpcError:
            return False  # no such option: no xpay, or one that cannot wait
        entry = (r.get("configs") or {}).get("xpay-slow-mode") or {}
        return entry.get("value_bool") is True

    async def developer_mode(self) -> bool:
        r = await self._call("listconfigs", {"config": "developer"})
        entry = (r.get("configs") or {}).get("developer") or {}
        return entry.get("set") is True

    async def pay(self, invoice: str, max_fee: Msat, max_delay: int) -> PaymentOutcome:
        params = {
            "invstring": invoice,
            "maxfee": max_fee.value,
            "maxdelay": max_delay,
            "retry_for": XPAY_RETRY_FOR,
        }
        try:
            r = await self._call("xpay", params)
        except RpcError as exc:
            code = (exc.error or {}).get("code") if isinstance(exc.error, dict) else None
            try:
                decoded = await self.decode(invoice)
                parts = await self._parts(str(decoded["payment_hash"]))
            except (RpcError, OSError, InvalidInput) as lost:
                return PaymentOutcome(PaymentStatus.PENDING, reason=f"outcome not known yet: {lost}")
            if code == _XPAY_ALREADY_PAID:
                return _outcome(parts, xpay_ended=False)
            # xpay has ended, but an error does not mean that no part can still succeed: without
            # slow mode it answers (203 on one failed part, 209 on a timeout...) while other parts
            # are still held. Only parts lightningd shows as final decide.
            outcome = _outcome(parts, xpay_ended=True)
            if outcome.status is PaymentStatus.FAILED:
                return PaymentOutcome(PaymentStatus.FAILED, reason=_rpc_message(exc), attempts=len(parts))
            return outcome
        except OSError as exc:
            return PaymentOutcome(PaymentStatus.PENDING, reason=f"lost contact with lightningd: {exc}")
        return PaymentOutcome(
            PaymentStatus.SUCCEEDED,
            preimage=bytes.fromhex(r["payment_preimage"]),
            amount_sent=Msat(int(r["amount_sent_msat"])),
        )

    async def payment_status(self, payment_hash: str, xpay_gone: bool = False) -> PaymentOutcome:
        """From lightningd's parts alone: an xpay whose answer we did not see may still be
        retrying, so parts that all failed count as a failure only once its retry window,
        counted from the first part, has passed, unless that xpay is known gone (`xpay_gone`)."""
        return _outcome(await self._parts(payment_hash), xpay_ended=xpay_gone)

    async def _parts(self, payment_hash: str) -> list[dict[str, Any]]:
        r = await self._call("listsendpays", {"payment_hash": payment_hash})
        return list(r.get("payments", []))

    async def make_secret(self, label: str) -> bytes:
        r = await self._call("makesecret", {"string": label})
        return bytes.fromhex(r["secret"])

    async def sign_message(self, message: str) -> str:
        r = await self._call("signmessage", {"message": message})
        return str(r["zbase"])

    async def check_message(self, message: str, zbase: str, node_id: str) -> bool:
        try:
            r = await self._call("checkmessage", {"message": message, "zbase": zbase, "pubkey": node_id})
        except RpcError:
            return False
        return bool(r.get("verified", False))

    async def create_invoice(self, amount: Msat, label: str, description: str) -> str:
        existing = (await self._call("listinvoices", {"label": label})).get("invoices", [])
        if existing:
            return str(existing[0]["bolt11"])
        try:
            r = await self._call(
                "invoice", {"amount_msat": amount.value, "label": label, "description": description}
            )
        except RpcError as exc:
            raise LightningFailure(f"invoice failed: {_rpc_message(exc)}") from None
        return str(r["bolt11"])


def _outcome(parts: list[dict[str, Any]], xpay_ended: bool) -> PaymentOutcome:
    """A payment's outcome from its parts: succeeded if any part completed; pending while any
    part is in flight (or xpay may still send more); failed only when no part can succeed."""
    for part in parts:
        if part.get("status") == "complete":
            return PaymentOutcome(
                PaymentStatus.SUCCEEDED,
                preimage=bytes.fromhex(part["payment_preimage"]),
                amount_sent=Msat(int(part.get("amount_sent_msat", 0))),
                attempts=len(parts),
            )
    if any(part.get("status") != "failed" for part in parts):
        return PaymentOutcome(PaymentStatus.PENDING, reason="parts still in flight", attempts=len(parts))
    if not parts:
        return PaymentOutcome(PaymentStatus.FAILED, reason="no payment attempt for this hash")
    first = min(int(part.get("created_at", 0)) for part in parts)
    if not xpay_ended and time.time() < first + XPAY_RETRY_FOR + _RETRY_SLACK:
        return PaymentOutcome(
            PaymentStatus.PENDING, reason="all parts failed so far; xpay may retry", attempts=len(parts)
        )
    return PaymentOutcome(PaymentStatus.FAILED, reason="every attempt failed", attempts=len(parts))


def _rpc_message(exc: RpcError) -> str:
    err = exc.error
    if isinstance(err, dict):
        return str(err.get("message", err))
    return str(err)
