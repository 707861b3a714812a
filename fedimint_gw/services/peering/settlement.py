"""Settlement of a peer link over Lightning (docs/peer-protocol.md §6).

Debtor: REQUESTED --settle_invoice--> PAYING --xpay ok--> PAID (+ledger entry) --settled--> DONE
        (an invoice refused, or a payment that definitely failed PAY_TRIES times: FAILED,
        nothing changed).
Creditor: INVOICED (our node's invoice for the id) --settled with the preimage--> DONE (+entry).
Each step is written before it runs; the same settlement id always gets the same invoice, and a
payment's unknown outcome is asked of lightningd, never guessed.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from typing import Any

from fedimint_gw.domain.amount import Msat
from fedimint_gw.errors import GatewayError, InvalidInput, NotFound, PaymentRefused
from fedimint_gw.lightning import bolt11
from fedimint_gw.lightning.node import PaymentOutcome, PaymentStatus
from fedimint_gw.peer import ledger, wire
from fedimint_gw.peer.errors import PeerRefused, proves_not_started
from fedimint_gw.services.context import ServiceContext
from fedimint_gw.services.peering.links import PeerService
from fedimint_gw.store import peers as repo

PAY_DELAY = 1008  # blocks a settlement payment may lock funds for
STATUS_PAUSE = 2.0
ATTEMPTS = 5  # tries at one peer request before leaving the settlement for the next refresh
OPEN_INVOICE_TTL = 3600  # seconds a creditor counts an unreported settlement invoice as open
# Seconds after an xpay call of this process whose answer was lost (it may still be finding a
# route, with no part sent yet) before "no part for this hash" may count as "never paid".
PAY_GRACE = 120.0
PAY_TRIES = 3  # Lightning payments of one settlement that may fail before the settlement does
REPAY_PAUSE = 10.0  # seconds between them
RESUME_INTERVAL = 60.0  # seconds between takes at the open settlements a run gave up on
S = repo.SettlementState


class SettleService:
    """Settles peer links: pays our debts and takes the peers' payments."""

    def __init__(self, ctx: ServiceContext, peers: PeerService) -> None:
        self._ctx = ctx
        self._peers = peers
        self._running: dict[str, asyncio.Task[repo.Settlement]] = {}  # per link: at most one
        self._locks: dict[str, asyncio.Lock] = {}
        # payment hash -> when this process last called xpay for it. In memory on purpose: the
        # plugin is not dynamic, so a new process means lightningd restarted, and no xpay call
        # of the old process is still running.
        self._xpay_called: dict[str, float] = {}
        self._repay: set[str] = set()  # hashes whose last xpay of ours ended failed: pay again
        self._pay_failures: dict[str, int] = {}  # payment hash -> failed payments (this process)
        self._resumer: asyncio.Task[None] | None = None

    # ----- debtor ----------------------------------------------------------------------
    async def settle(self, node_id: object, amount_msat: object = None) -> dict[str, Any]:
        """`fedimint-peer-settle`: pay what we owe the peer (all of it by default).

        One settlement per link at a time: while one is open (also one the automatic settlement
        started), this waits for that one and answers its outcome instead of starting another."""
        rec = await repo.get(self._ctx.db.conn, str(node_id))
        if rec is None:
            raise NotFound(f"no peer {node_id}")
        requested = None if amount_msat in (None, "") else _positive(amount_msat)
        async with self._lock(rec.node_id):
            s = await self._open(rec.node_id)
            if s is None:
                debt = -await repo.balance(self._ctx.db.conn, rec.node_id)
                amount = debt if requested is None else requested
                if amount <= 0 or amount > debt:
                    raise InvalidInput(
                        f"this gateway owes the peer {max(debt, 0)} msat; nothing to settle for {amount}"
                    )
                s = await self._create(rec.node_id, amount)
            else:
                self._ctx.log(
                    f"peer {rec.node_id[:16]}: settlement {s.settlement_id} is open; joining it", "info"
                )
            task = self._spawn(s)
        s = await asyncio.shield(task)
        return {**_describe(s), "balance_msat": await repo.balance(self._ctx.db.conn, rec.node_id)}

    async def maybe_settle(self, node_id: str) -> None:
        """After a forward added to our debt: settle in the background once it passes the threshold."""
        async with self._lock(node_id):
            rec = await repo.get(self._ctx.db.conn, node_id)
            if rec is None or node_id in self._running or await self._open(node_id) is not None:
                return
            due = ledger.settlement_due(
                await repo.balance(self._ctx.db.conn, node_id), rec.peer_credit_limit_msat
            )
            if due > 0:
                self._ctx.log(f"peer {node_id[:16]}: debt {due} msat passed the threshold; settling", "info")
                self._spawn(await self._create(node_id, due))

    def _lock(self, node_id: str) -> asyncio.Lock:
        """Held while deciding whether a link's settlement exists, and creating it."""
        lock = self._locks.get(node_id)
        if lock is None:
            lock = self._locks[node_id] = asyncio.Lock()
        return lock

    async def _open(self, node_id: str) -> repo.Settlement | None:
        """The link's open debtor settlement (persisted: a restart keeps it open), if any."""
        for s in await repo.settlements(self._ctx.db.conn, node_id):
            if s.role == "debtor" and not s.state.terminal:
                return s
        return None

    async def _create(self, node_id: str, amount: int) -> repo.Settlement:
        now = self._ctx.clock.now()
        s = repo.Settlement("s-" + secrets.token_hex(16), node_id, "debtor", S.REQUESTED, amount, now, now)
        await self._save(s)
        return s

    def _spawn(self, s: repo.Settlement) -> asyncio.Task[repo.Settlement]:
        """The one task running the link's settlement (the one already running, if any)."""
        task = self._running.get(s.node_id)
        if task is None:
            task = asyncio.create_task(self._run(s))
            self._running[s.node_id] = task
            task.add_done_callback(lambda _t: self._running.pop(s.node_id, None))
        return task

    async def _run(self, s: repo.Settlement) -> repo.Settlement:
        failures = 0
        while not s.state.terminal and failures < ATTEMPTS:
            try:
                if s.state is S.REQUESTED:
                    s = await self._request_invoice(s)
                elif s.state is S.PAYING:
                    s = await self._pay(s)
                elif s.state is S.PAID:
                    s = await self._notify(s)
            except GatewayError as exc:
                failures += 1
                self._ctx.log(f"settlement {s.settlement_id} in {s.state.value}: {exc.message}", "info")
                await asyncio.sleep(STATUS_PAUSE)
            except Exception as exc:  # a background run outlives the unexpected; the step is retried
                failures += 1
                self._ctx.log(f"settlement {s.settlement_id} in {s.state.value}: unexpected {exc!r}", "warn")
                await asyncio.sleep(STATUS_PAUSE)
        return s

    async def _request_invoice(self, s: repo.Settlement) -> repo.Settlement:
        link = await self._peers.link(s.node_id)
        body = {"settlement_id": s.settlement_id, "amount_msat": s.amount_msat}
        try:
            answer = await self._peers.client.call(link, "settle_invoice", body)
        except PeerRefused as exc:
            if proves_not_started(exc):
                return await self._advance(s, S.FAILED, error=exc.message)
            raise
        invoice = str(answer.get("invoice", ""))
        try:
            inv = bolt11.decode(invoice)
        except ValueError:
            return await self._advance(s, S.FAILED, error="the peer's settlement invoice is invalid")
        if inv.payee.hex() != s.node_id or inv.amount_msat != s.amount_msat:
            return await self._advance(
                s, S.FAILED, error="the settlement invoice is not the peer's, or wrong amount"
            )
        return await self._advance(s, S.PAYING, invoice=invoice, payment_hash=inv.payment_hash.hex())

    async def _pay(self, s: repo.Settlement) -> repo.Settlement:
        payment_hash = str(s.payment_hash)
        if payment_hash in self._repay:  # our last xpay ended failed: no part can still succeed
            outcome = await self._xpay(s)
        else:
            outcome = await self._ctx.node.payment_status(payment_hash)
            if outcome.status is PaymentStatus.FAILED:
                called = self._xpay_called.get(payment_hash)
                if called is not None and time.monotonic() - called < PAY_GRACE:
                    # Our xpay call's answer was lost and xpay may still be running: with no
                    # part sent yet, or between routes after a failed part. Taking that for a
                    # failure and paying again could pay the invoice twice.
                    await asyncio.sleep(STATUS_PAUSE)
                    return s
                if not outcome.attempts:
                    outcome = await self._xpay(s)
        if outcome.status is PaymentStatus.SUCCEEDED and outcome.preimage is not None:
            entry = ledger.Entry(f"settlement:{s.settlement_id}", s.amount_msat)
            new = s.advance(S.PAID, self._ctx.clock.now(), preimage=outcome.preimage.hex())
            async with self._ctx.db.transaction() as conn:
                await repo.add_entry(conn, s.node_id, entry, new.updated_at)
                await repo.save_settlement(conn, new)
            return new
        if outcome.status is PaymentStatus.FAILED:
            failures = self._pay_failures.get(payment_hash, 0) + 1
            self._pay_failures[payment_hash] = failures
            if failures < PAY_TRIES:
                # No part is in flight, so paying again cannot pay twice. Right after a restart
                # the channels are still reconnecting: a first failure is often only that.
                self._ctx.log(
                    f"settlement {s.settlement_id}: the Lightning payment failed ({outcome.reason}); "
                    f"trying again in {REPAY_PAUSE:.0f} s",
                    "info",
                )
                self._repay.add(payment_hash)
                await asyncio.sleep(REPAY_PAUSE)
                return s
            return await self._advance(s, S.FAILED, error=f"the Lightning payment failed: {outcome.reason}")
        await asyncio.sleep(STATUS_PAUSE)
        return s

    async def _xpay(self, s: repo.Settlement) -> PaymentOutcome:
        payment_hash = str(s.payment_hash)
        self._repay.discard(payment_hash)
        self._xpay_called[payment_hash] = time.monotonic()
        max_fee = Msat(max(1000, s.amount_msat // 100))
        return await self._ctx.node.pay(str(s.invoice), max_fee, PAY_DELAY)

    async def _notify(self, s: repo.Settlement) -> repo.Settlement:
        link = await self._peers.link(s.node_id)
        body = {"settlement_id": s.settlement_id, "preimage": s.preimage}
        answer = await self._peers.client.call(link, "settled", body)
        await self._peers.keep_statement(s.node_id, answer.get("statement"))
        return await self._advance(s, S.DONE)

    async def resume(self) -> None:
        """Finish debtor settlements cut short (called at start, then every RESUME_INTERVAL)."""
        for s in await repo.settlements(self._ctx.db.conn):
            if s.role == "debtor" and not s.state.terminal:
                async with self._lock(s.node_id):
                    self._spawn(s)
        if self._resumer is None:
            self._resumer = asyncio.create_task(self._resume_forever())

    async def _resume_forever(self) -> None:
        """A run gives up after ATTEMPTS failed requests (the peer is down): its settlement stays
        open (and blocks the automatic one) until it is taken up again here. A settlement
        already paid keeps telling the creditor (`settled`) until it is recorded there."""
        while True:
            await asyncio.sleep(RESUME_INTERVAL)
            try:
                await self.resume()
            except Exception as exc:  # the loop outlives any failure; the next round tries again
                self._ctx.log(f"resuming settlements failed unexpectedly: {exc!r}", "warn")

    async def stop(self) -> None:
        if self._resumer is not None:
            self._resumer.cancel()
            self._resumer = None
        for task in list(self._running.values()):
            task.cancel()

    # ----- creditor --------------------------------------------------------------------
    async def on_settle_invoice(self, peer: repo.PeerRecord, body: dict[str, Any]) -> dict[str, Any]:
        """Our invoice for a settlement (the same one for the same id)."""
        sid, amount = body.get("settlement_id"), body.get("amount_msat")
        if not wire.is_protocol_id(sid) or not isinstance(amount, int) or isinstance(amount, bool):
            raise InvalidInput("settle_invoice needs settlement_id and amount_msat")
        async with self._lock(peer.node_id):
            existing = await repo.get_settlement(self._ctx.db.conn, peer.node_id, str(sid))
            if existing is not None:
                if existing.amount_msat != amount or existing.role != "creditor":
                    raise InvalidInput("this settlement id was used for another amount")
                return {"settlement_id": sid, "invoice": existing.invoice}
            owed = await repo.balance(self._ctx.db.conn, peer.node_id)
            invoiced = await self._invoiced(peer.node_id)
            if amount <= 0 or amount > owed - invoiced:
                raise PaymentRefused(
                    f"you owe this gateway {max(owed, 0)} msat, of which {invoiced} msat are already "
                    f"invoiced by open settlements; not {amount}"
                )
            label = f"fedimint-gw-settle-{peer.node_id[:16]}-{sid}"
            invoice = await self._ctx.node.create_invoice(
                Msat(amount), label, f"fedimint-gw peer settlement {sid}"
            )
            now = self._ctx.clock.now()
            payment_hash = bolt11.decode(invoice).payment_hash.hex()
            s = repo.Settlement(
                str(sid), peer.node_id, "creditor", S.INVOICED, amount, now, now, invoice, payment_hash
            )
            await self._save(s)
        return {"settlement_id": sid, "invoice": invoice}

    async def _invoiced(self, node_id: str) -> int:
        """What the peer's open settlements (our invoices not yet reported paid, not expired, and
        younger than OPEN_INVOICE_TTL) already cover: a second settlement of the same debt is
        refused, so it is never paid twice. After the TTL an unreported invoice no longer blocks
        a new one (its payment may have failed for good; the debtor never opens a second
        settlement while one of its own is open, so the TTL only bounds this second guard)."""
        now = self._ctx.clock.now()
        total = 0
        for s in await repo.settlements(self._ctx.db.conn, node_id):
            if s.created_at < now - OPEN_INVOICE_TTL:
                continue
            if s.role == "creditor" and s.state is S.INVOICED and s.invoice:
                try:
                    expired = bolt11.decode(s.invoice).is_expired(now)
                except ValueError:
                    expired = False
                total += 0 if expired else s.amount_msat
        return total

    async def on_settled(self, peer: repo.PeerRecord, body: dict[str, Any]) -> dict[str, Any]:
        """The debtor paid: check the preimage against our invoice and record the entry once."""
        sid, preimage = body.get("settlement_id"), body.get("preimage")
        s = await repo.get_settlement(self._ctx.db.conn, peer.node_id, str(sid))
        if s is None or s.role != "creditor":
            raise NotFound(f"no settlement {sid} with this peer")
        try:
            paid = hashlib.sha256(bytes.fromhex(str(preimage))).hexdigest() == s.payment_hash
        except ValueError:
            paid = False
        if not paid:
            raise InvalidInput("the preimage is not the settlement invoice's")
        if s.state is not S.DONE:
            entry = ledger.Entry(f"settlement:{s.settlement_id}", -s.amount_msat)
            new = s.advance(S.DONE, self._ctx.clock.now(), preimage=str(preimage))
            async with self._ctx.db.transaction() as conn:
                await repo.add_entry(conn, peer.node_id, entry, new.updated_at)
                await repo.save_settlement(conn, new)
            self._ctx.log(f"peer {peer.node_id[:16]} settled {s.amount_msat} msat", "info")
        return {
            "settlement_id": sid,
            "state": "recorded",
            "statement": await self._peers.statement(peer.node_id),
        }

    # ----- internals -------------------------------------------------------------------
    async def _advance(
        self, s: repo.Settlement, state: repo.SettlementState, **changes: Any
    ) -> repo.Settlement:
        new = s.advance(state, self._ctx.clock.now(), **changes)
        await self._save(new)
        return new

    async def _save(self, s: repo.Settlement) -> None:
        async with self._ctx.db.transaction() as conn:
            await repo.save_settlement(conn, s)


def _positive(raw: object) -> int:
    if isinstance(raw, bool):
        raise InvalidInput("amount_msat must be an integer")
    try:
        value = int(str(raw))
    except ValueError:
        raise InvalidInput(f"amount_msat must be an integer, got {raw!r}") from None
    if value <= 0:
        raise InvalidInput("amount_msat must be positive")
    return value


def _describe(s: repo.Settlement) -> dict[str, Any]:
    body: dict[str, Any] = {
        "settlement_id": s.settlement_id,
        "node_id": s.node_id,
        "state": s.state.value,
        "amount_msat": s.amount_msat,
    }
    if s.error:
        body["error"] = s.error
    return body
