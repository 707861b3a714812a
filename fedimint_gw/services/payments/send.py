"""Sending: a federation user's contract pays a Lightning invoice through the gateway.

State machine per user contract (payment id `send:<contract id>`), written before each step:
    (new) --verify--> PAYING --xpay ok--> CLAIMING --claim--> SUCCEEDED
                             --xpay failed--> CANCELLING --cancel/forfeit--> REFUNDED
An invoice ending in one of our federations is a swap (swap.py); one ending at a peer gateway
is a peer forward (peering/forwards.py, through the `PeerForwarding` seam below:
HTLC_HELD --peer--> CLAIMING/CANCELLING, or back to PAYING).
An unknown Lightning outcome is never taken for a failure: the flow asks lightningd
(`listsendpays`) until it knows. A contract is paid at most once (one row per contract and
per payment hash) and claimed at most once (the adapter's claim is idempotent).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from fedimint_gw.domain.amount import Msat
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.errors import GatewayError, InsufficientFunds, InvalidInput, NotReady, PaymentRefused
from fedimint_gw.federation.client import OutgoingState
from fedimint_gw.lightning import bolt11
from fedimint_gw.lightning.node import PaymentOutcome, PaymentStatus
from fedimint_gw.services.context import ServiceContext
from fedimint_gw.services.payments import federation_fees
from fedimint_gw.services.payments.sharing import KeyedLocks, SharedReading
from fedimint_gw.services.payments.swap import SwapService, swap_data
from fedimint_gw.store import federations as fed_repo
from fedimint_gw.store import payments as repo

STATUS_POLL = 2.0
_SWAP_B_SIDE = (PaymentState.HTLC_HELD, PaymentState.FUNDED)
ATTEMPT_GRACE = 120.0  # seconds after an xpay call before 'no attempt found' counts as failed
RESUME_WAIT = 60.0  # how long a send resumed at start waits for lightningd's channels to reconnect
LIQUIDITY_POLL = 1.0  # how often those waiting sends look (one reading shared by all of them)


class PeerForwarding(Protocol):
    """What sending needs from peering (services/peering/forwards.py implements it).

    A seam, so that payments/ never imports peering/: peering builds on payments (it swaps
    inbound forwards), and the gateway facade wires the two together.
    """

    async def plan(
        self, rec: repo.PaymentRecord, inv: bolt11.Invoice, contract_amount: int
    ) -> repo.PaymentRecord | None:
        """`rec` turned into a peer forward if the invoice ends at a peer and credit allows, else None."""
        ...

    async def drive_send(self, rec: repo.PaymentRecord) -> repo.PaymentRecord:
        """Forward a user's payment; returns it CLAIMING, CANCELLING, or fallen back to Lightning."""
        ...


@dataclass(frozen=True)
class SendResult:
    """What the user's wallet gets back: the preimage, or how to get refunded."""

    state: PaymentState
    preimage: str | None = None
    forfeit_signature: str | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"state": self.state.value}
        if self.preimage:
            body["preimage"] = self.preimage
        if self.forfeit_signature:
            body["forfeit_signature"] = self.forfeit_signature
        if self.error:
            body["error"] = self.error
        return body


class OutgoingService:
    """Pays invoices for federation users and claims their contracts."""

    def __init__(self, ctx: ServiceContext, forwards: PeerForwarding | None = None) -> None:
        self._ctx = ctx
        self._forwards = forwards
        self._config = ctx.config
        self._db = ctx.db
        self._node = ctx.node
        self._feds = ctx.federations
        self._clock = ctx.clock
        self._log = ctx.log
        self._inflight: dict[str, asyncio.Future[SendResult]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._swaps = SwapService(ctx)
        self._hash_locks = KeyedLocks()
        # This process's id, written with each xpay call: one written by another process was
        # called on another lightningd (the plugin is not dynamic), so that xpay is gone.
        self._run_id = secrets.token_hex(8)
        self._resumed: set[str] = set()  # sends resumed at start that never called xpay yet
        self._spendable = SharedReading(self._read_spendable, LIQUIDITY_POLL)

    async def send(self, federation_id: str, contract_id: str, invoice: str) -> SendResult:
        """Pay `invoice` for the user's outgoing `contract_id` (idempotent per contract)."""
        try:
            fid = FederationId.parse(federation_id)
            inv = bolt11.decode(invoice)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from None
        payment_id = f"send:{contract_id}"
        answer = self._inflight.get(payment_id)
        if answer is None:

            async def flow(answer: asyncio.Future[SendResult]) -> None:
                rec = await repo.get(self._db.conn, payment_id)
                if rec is None:
                    rec = await self._verify_and_record(fid, contract_id, invoice, inv, payment_id)
                await self.drive(rec, answer)

            answer = self._track(payment_id, flow)
        return await asyncio.shield(answer)

    async def _verify_and_record(
        self, fid: FederationId, contract_id: str, invoice: str, inv: bolt11.Invoice, payment_id: str
    ) -> repo.PaymentRecord:
        # One payment per hash: the check that no other contract pays this hash and the record
        # that this one does are one step, so two contracts sent at once cannot both pass it.
        async with self._hash_locks.hold(inv.payment_hash.hex()):
            return await self._verify_and_record_locked(fid, contract_id, invoice, inv, payment_id)

    async def _verify_and_record_locked(
        self, fid: FederationId, contract_id: str, invoice: str, inv: bolt11.Invoice, payment_id: str
    ) -> repo.PaymentRecord:
        fed = await fed_repo.get(self._db.conn, fid)
        if fed is None or fed.state is not fed_repo.FederationState.ACTIVE:
            raise InvalidInput(f"the gateway does not serve federation {fid.hex}")
        if inv.amount_msat is None:
            raise PaymentRefused("invoices without an amount are not supported")
        if inv.is_expired(self._clock.now()):
            raise PaymentRefused("the invoice has expired")
        client = self._feds.client(fid)
        contract = await client.verify_outgoing(contract_id)
        if not contract.gateway_key_matches:
            raise PaymentRefused("the contract is not locked to this gateway's key")
        if contract.state is not OutgoingState.FUNDED:
            raise PaymentRefused(f"the contract is {contract.state.value}, not funded")
        if contract.payment_hash != inv.payment_hash.hex():
            raise PaymentRefused("the contract's payment hash is not the invoice's")
        now = self._clock.now()
        rec = repo.PaymentRecord(
            payment_id=payment_id,
            kind=PaymentKind.SEND,
            state=PaymentState.PAYING,
            payment_hash=contract.payment_hash,
            amount_msat=inv.amount_msat,
            federation_id=fid.hex,
            created_at=now,
            updated_at=now,
            data={"contract_id": contract_id, "invoice": invoice, "started": time.time()}
            | federation_fees.contract_data(contract.amount),
        )
        # From here the contract is ours: a refusal cancels it so the user is refunded at once.
        try:
            rec = await self._plan(rec, fed, inv, contract.amount, contract.timelock_height, client)
        except PaymentRefused as exc:
            rec = rec.advance(PaymentState.CANCELLING, now, error=exc.message)
        except InsufficientFunds as exc:
            rec = rec.advance(PaymentState.CANCELLING, now, error=exc.message)
        async with self._db.transaction() as conn:
            await repo.save(conn, rec)
        self._log(f"send {payment_id}: {rec.kind.value} of {rec.amount_msat} msat, {rec.state.value}", "info")
        return rec

    async def _plan(
        self,
        rec: repo.PaymentRecord,
        fed: fed_repo.FederationRecord,
        inv: bolt11.Invoice,
        contract_amount: Msat,
        timelock_height: int,
        client: Any,
    ) -> repo.PaymentRecord:
        """Decide between a swap and a Lightning payment, and check the contract pays for it."""
        amount = Msat(rec.amount_msat)
        already = [
            r
            for kind in (PaymentKind.SEND, PaymentKind.SWAP, PaymentKind.PEER)
            for r in await repo.by_hash(self._db.conn, rec.payment_hash, kind)
            if r.state is not PaymentState.REFUNDED
            and r.payment_id != rec.payment_id
            and r.data.get("direction") != "in"
        ]
        if already:
            raise PaymentRefused("this payment hash is already being paid or was paid by the gateway")
        target = await self._swaps.find_target(inv)
        if target is not None:
            await self._ctx.controls.check_swap(
                fed.federation_id, target.federation_id, contract_amount, rec.payment_id
            )
            fee = await self._swaps.fee(fed.federation_id, target.federation_id, amount)
            _check_covers(contract_amount, amount, fee)
            await self._swaps.check_liquidity(target)
            if not await self._swaps.claim_registration(target, rec.payment_id):
                raise PaymentRefused("the invoice is being paid already")
            return replace(
                rec,
                kind=PaymentKind.SWAP,
                state=PaymentState.HTLC_HELD,
                fee_msat=fee.value,
                target_federation_id=target.federation_id.hex,
                data={**rec.data, **swap_data(target)},
            )
        await self._ctx.controls.check_send(fed.federation_id, contract_amount, rec.payment_id)
        fee = fed.fees.fee(amount)
        _check_covers(contract_amount, amount, fee)
        height = await client.block_height()
        max_delay = timelock_height - height - self._config.cltv_margin
        if max_delay < inv.min_final_cltv_expiry + 6:
            raise PaymentRefused(
                f"the contract's timelock (height {timelock_height}, now {height}) leaves too "
                "little time to pay safely"
            )
        lightning = replace(
            rec,
            fee_msat=fee.value,
            data={
                **rec.data,
                "max_fee_msat": contract_amount.value - amount.value - fee.value,
                "max_delay": max_delay,
            },
        )
        if self._forwards is not None:  # an invoice ending at a peer gateway: forward it, no Lightning
            forward = await self._forwards.plan(lightning, inv, contract_amount.value)
            if forward is not None:
                return forward
        return lightning

    async def drive(
        self, rec: repo.PaymentRecord, answer: asyncio.Future[SendResult] | None = None
    ) -> SendResult:
        """Run (or resume) a send flow to its end. `answer` gets the user's result as soon as it
        is known: the preimage once it is written (CLAIMING), before the claim finishes; the
        claim itself is idempotent and resumes after a crash."""
        fid = FederationId(str(rec.federation_id))
        contract_id = str(rec.data["contract_id"])
        while not rec.state.terminal:
            if rec.state is PaymentState.CLAIMING and answer is not None and not answer.done():
                answer.set_result(SendResult(rec.state, preimage=rec.preimage))
            try:
                if rec.kind is PaymentKind.SWAP and rec.state in (
                    PaymentState.HTLC_HELD,
                    PaymentState.FUNDED,
                ):
                    rec = await self._swaps.drive(rec)
                elif rec.kind is PaymentKind.PEER and rec.state is PaymentState.HTLC_HELD:
                    if self._forwards is None:
                        raise NotReady("peer forwarding is not running")
                    rec = await self._forwards.drive_send(rec)
                elif rec.state is PaymentState.PAYING:
                    rec = await self._pay(rec)
                elif rec.state is PaymentState.CLAIMING:
                    gained = await self._feds.client(fid).claim_outgoing(
                        contract_id, bytes.fromhex(str(rec.preimage))
                    )
                    took = federation_fees.claim_fee(rec, gained)
                    rec = await self._ctx.advance(
                        rec, PaymentState.SUCCEEDED, data={"claimed_msat": gained.value, **took}
                    )
                    federation_fees.warn_if_short(rec, self._log)
                elif rec.state is PaymentState.CANCELLING:
                    cancel = await self._feds.client(fid).cancel_outgoing(contract_id)
                    rec = await self._ctx.advance(
                        rec, PaymentState.REFUNDED, data={"forfeit_signature": cancel.forfeit_signature}
                    )
            except GatewayError as exc:
                self._log(f"send {rec.payment_id} in {rec.state.value}: {exc.message}; retrying", "info")
                await asyncio.sleep(STATUS_POLL)
            except Exception as exc:  # a malformed answer, a database error: the step is retried
                self._log(f"send {rec.payment_id} in {rec.state.value}: unexpected {exc!r}; again", "error")
                await asyncio.sleep(STATUS_POLL)
        result = SendResult(
            rec.state,
            preimage=rec.preimage,
            forfeit_signature=rec.data.get("forfeit_signature"),
            error=rec.error,
        )
        if answer is not None and not answer.done():
            answer.set_result(result)
        return result

    async def _pay(self, rec: repo.PaymentRecord) -> repo.PaymentRecord:
        if rec.data.get("attempted_at"):
            # xpay called by an earlier process of the plugin died with its lightningd (the
            # plugin is not dynamic: a new process means a new lightningd): it sends no more.
            earlier = rec.data.get("xpay_run") != self._run_id
            outcome = await self._node.payment_status(rec.payment_hash, xpay_gone=earlier)
            never_sent = outcome.status is PaymentStatus.FAILED and not outcome.attempts
            attempted_at = float(rec.data["attempted_at"])
            if never_sent and earlier:  # that xpay sent nothing: pay now
                self._log(
                    f"send {rec.payment_id}: the xpay called before the restart sent nothing; paying", "info"
                )
                await self._until_channels_back(rec)
                rec, outcome = await self._attempt(rec)
            elif (
                outcome.status is PaymentStatus.FAILED
                and not earlier
                and time.time() - attempted_at < ATTEMPT_GRACE
            ):
                # This process's xpay gave no final answer and may still be sending: nothing sent
                # yet, or parts that failed so far (its own, or an earlier refunded send's for the
                # same hash, older than its window) are no failure until its retry window,
                # counted from this call, has passed.
                await asyncio.sleep(STATUS_POLL)
                return rec
        else:
            if rec.payment_id in self._resumed:
                self._resumed.discard(rec.payment_id)
                await self._until_channels_back(rec)
            rec, outcome = await self._attempt(rec)
        if outcome.status is PaymentStatus.SUCCEEDED and outcome.preimage is not None:
            return await self._ctx.advance(rec, PaymentState.CLAIMING, preimage=outcome.preimage.hex())
        if outcome.status is PaymentStatus.FAILED:
            return await self._ctx.advance(
                rec, PaymentState.CANCELLING, error=f"Lightning payment failed: {outcome.reason}"
            )
        await asyncio.sleep(STATUS_POLL)  # unknown: ask lightningd again
        return rec

    async def _attempt(self, rec: repo.PaymentRecord) -> tuple[repo.PaymentRecord, PaymentOutcome]:
        """Write that xpay is being called (step `xpay`), then call it."""
        rec = await self._ctx.advance(
            rec,
            PaymentState.PAYING,
            data={"attempted_at": time.time(), "step": "xpay", "xpay_run": self._run_id},
        )
        outcome = await self._node.pay(
            str(rec.data["invoice"]), Msat(int(rec.data["max_fee_msat"])), int(rec.data["max_delay"])
        )
        return rec, outcome

    async def _until_channels_back(self, rec: repo.PaymentRecord) -> None:
        """A send cut short before its payment started, resumed at start: lightningd reconnects
        its peers only after it started the plugin, and xpay finds no route meanwhile and fails
        at once (the user would be refunded for nothing). Wait until the connected channels can
        send the amount, for at most `RESUME_WAIT` seconds, then pay anyway."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RESUME_WAIT
        logged = False
        while loop.time() < deadline:
            try:
                if await self._spendable.get() >= rec.amount_msat:
                    return
            except Exception as exc:  # lightningd busy starting: ask again
                self._log(f"send {rec.payment_id}: liquidity unknown ({exc!r})", "info")
            if not logged:
                self._log(f"send {rec.payment_id}: waiting for lightningd's channels to reconnect", "info")
                logged = True
            await asyncio.sleep(LIQUIDITY_POLL)
        self._log(f"send {rec.payment_id}: channels still short after {RESUME_WAIT:.0f} s; paying", "info")

    async def _read_spendable(self) -> int:
        return (await self._node.liquidity()).spendable.value

    async def resume(self) -> None:
        """At start: finish every send that was cut short."""
        for rec in await repo.unfinished(self._db.conn):
            mine = rec.kind in (PaymentKind.SEND, PaymentKind.SWAP) or (
                rec.kind is PaymentKind.PEER and "contract_id" in rec.data
            )
            if mine and rec.state is PaymentState.PAYING and not rec.data.get("attempted_at"):
                self._resumed.add(rec.payment_id)
            if mine and rec.payment_id not in self._inflight:

                async def flow(answer: asyncio.Future[SendResult], rec: repo.PaymentRecord = rec) -> None:
                    await self.drive(rec, answer)

                self._track(rec.payment_id, flow)

    async def stop(self) -> None:
        """Cancel every running send and wait for them (each resumes at the next start)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _track(
        self, payment_id: str, flow: Callable[[asyncio.Future[SendResult]], Awaitable[None]]
    ) -> asyncio.Future[SendResult]:
        """Run `flow` as the one task of this payment; its answer future serves every request
        for it until the flow ends (a flow that fails before answering fails the requests)."""
        answer: asyncio.Future[SendResult] = asyncio.get_running_loop().create_future()
        self._inflight[payment_id] = answer

        async def run() -> None:
            try:
                await flow(answer)
            except asyncio.CancelledError:
                if not answer.done():
                    answer.cancel()
                raise
            except BaseException as exc:
                if not answer.done():
                    answer.set_exception(exc)
                    answer.exception()  # marked retrieved: the requests waiting get it too
                elif isinstance(exc, Exception):
                    self._log(f"send {payment_id}: {exc!r}", "error")
                if not isinstance(exc, Exception):
                    raise
            finally:
                self._inflight.pop(payment_id, None)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return answer


def _check_covers(contract_amount: Msat, amount: Msat, fee: Msat) -> None:
    if contract_amount.value < amount.value + fee.value:
        raise PaymentRefused(
            f"the contract holds {contract_amount.value} msat; invoice {amount.value} + "
            f"gateway fee {fee.value} msat needed"
        )
