"""Receiving: Lightning HTLCs paid into federations (v1 offers, v2 registered contracts).

State machine per HTLC, keyed by (incoming scid, htlc id) and written before each side effect:
    (new) --checks--> HTLC_HELD --fund--> FUNDED --preimage--> SUCCEEDED (resolve)
                                                 --refund---> REFUNDED (fail; gateway got its ecash back)
          --checks fail--> FAILED (fail at once, nothing funded)
lightningd replays unresolved HTLCs after a restart; a replay finds its row and continues
from the stored state, so an HTLC is never funded twice nor resolved with another preimage.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fedimint_gw.domain.amount import Msat
from fedimint_gw.domain.htlc import (
    TEMPORARY_NODE_FAILURE,
    HtlcEvent,
    answer_continue,
    answer_fail,
    answer_resolve,
    answer_unknown_payment,
)
from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.errors import GatewayError, NotReady, PaymentRefused
from fedimint_gw.federation.client import IncomingRequest, IncomingState
from fedimint_gw.services.context import ServiceContext
from fedimint_gw.services.htlc_router import HtlcOwner, RouteDecision
from fedimint_gw.services.payments import federation_fees
from fedimint_gw.services.payments.receive_recovery import POLL_TIMEOUT, RESOLVING, ReceiveRecovery
from fedimint_gw.services.payments.requests import request_from_json, request_json
from fedimint_gw.store import federations as fed_repo
from fedimint_gw.store import payments as repo

RETRY_PAUSE = 2.0
BUSY_PAUSE = 0.1  # ecash reserved by another flow: ask again soon
BUSY_LOG_EVERY = 100  # log a busy wait on its first round and then every this many rounds
T = TypeVar("T")


class _Refuse(Exception):
    """A check failed before anything was funded: fail the HTLC with this answer."""

    def __init__(self, reason: str, answer: dict[str, Any]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.answer = answer


class _PassOn(Exception):
    """The HTLC carries a registered hash but does not match its registration: it is not
    ours. Answer `continue` (lightningd decides, as for any HTLC) and record nothing."""


class IncomingService:
    """Handles the HTLCs the router assigns to federations."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._config = ctx.config
        self._db = ctx.db
        self._node = ctx.node
        self._feds = ctx.federations
        self._clock = ctx.clock
        self._log = ctx.log
        self._inflight: dict[tuple[str, int], asyncio.Task[dict[str, Any]]] = {}
        self._recovery = ReceiveRecovery(ctx, lambda key: key in self._inflight)
        self._last_height = 0

    async def handle(self, event: HtlcEvent, decision: RouteDecision) -> dict[str, Any]:
        """The hook answer for an HTLC the gateway owns. The same HTLC handed over twice at
        once (a replay racing the original) shares one flow."""
        task = self._inflight.get(event.key)
        if task is None:
            task = asyncio.create_task(self._handle(event, decision))
            self._inflight[event.key] = task
            task.add_done_callback(lambda _t: self._inflight.pop(event.key, None))
        return await asyncio.shield(task)

    async def stop(self) -> None:
        """Cancel every running flow and wait for them to end: their hooks get no answer
        (lightningd replays the HTLCs after its restart) and nothing runs on a closed database."""
        tasks: list[asyncio.Task[Any]] = [*self._inflight.values(), *self._recovery.tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _handle(self, event: HtlcEvent, decision: RouteDecision) -> dict[str, Any]:
        payment_id = f"recv:{event.incoming_scid}:{event.htlc_id}"
        # Until the record is read, nobody knows whether a funding was submitted: keep trying.
        rec = await self._patiently(f"HTLC {event.key}", lambda: self._find(event))
        if rec is None:
            # No record: nothing was ever funded for this HTLC, so failing it costs nothing.
            height = await self._height(event)
            try:
                rec = await self._accept(payment_id, event, decision, height)
            except _PassOn as passed:
                self._log(f"HTLC {event.key} passed on: {passed}", "info")
                return answer_continue()
            except _Refuse as refusal:
                await self._record_refusal(payment_id, event, decision, refusal.reason)
                self._log(f"HTLC {event.key} refused: {refusal.reason}", "info")
                return refusal.answer
        return await self._drive(rec, event)

    async def _find(self, event: HtlcEvent) -> repo.PaymentRecord | None:
        """The record of this HTLC, also when lightningd replays it under another name of its
        channel (delivered under the local alias, replayed under the real scid once the
        channel confirmed): same channel, same HTLC id, same payment hash."""
        rec = await repo.by_htlc(self._db.conn, event.incoming_scid, event.htlc_id)
        if rec is not None:
            return rec
        for name in await self._node.channel_names(event.incoming_scid) - {event.incoming_scid}:
            rec = await repo.by_htlc(self._db.conn, name, event.htlc_id)
            if rec is not None and rec.payment_hash == event.payment_hash:
                self._log(f"HTLC {event.key} is the replay of {name}:{event.htlc_id}", "info")
                return rec
        return None

    async def _height(self, event: HtlcEvent) -> int:
        """The current block height; if lightningd does not answer, the last one it gave, or the
        height at which it handed us the HTLC (good enough for a failure message)."""
        try:
            self._last_height = max(self._last_height, (await self._node.info()).block_height)
        except Exception as exc:  # a getinfo error must not decide an HTLC's fate
            self._log(f"HTLC {event.key}: getinfo failed ({exc!r}); using the last height known", "info")
        return max(self._last_height, event.cltv_expiry - event.cltv_expiry_relative)

    async def _patiently(self, what: str, read: Callable[[], Awaitable[T]]) -> T:
        """`read()` until it works (a database error is not an answer about an HTLC)."""
        while True:
            try:
                return await read()
            except Exception as exc:
                self._log(f"{what}: cannot read its state ({exc!r}); the HTLC stays held, retrying", "error")
                await asyncio.sleep(RETRY_PAUSE)

    # ----- checks ------------------------------------------------------------------------
    async def _accept(
        self, payment_id: str, event: HtlcEvent, decision: RouteDecision, height: int
    ) -> repo.PaymentRecord:
        """Check the HTLC against the offer or registered contract; persist HTLC_HELD."""
        unknown = answer_unknown_payment(event.amount_msat, height)
        fid = decision.federation_id
        if fid is None:
            raise _Refuse("no federation", unknown)
        now = self._clock.now()
        registration = None
        if decision.owner is HtlcOwner.REGISTERED_HASH:
            registration = await self._registration(event, fid, now)
        fed = await fed_repo.get(self._db.conn, fid)
        if fed is None or fed.state is not fed_repo.FederationState.ACTIVE:
            raise _Refuse("federation no longer served", unknown)
        try:
            await self._ctx.controls.check_receive(fid, Msat(event.amount_msat))
        except PaymentRefused as exc:
            raise _Refuse(exc.message, unknown) from None
        if event.cltv_expiry - height <= self._config.cltv_margin:  # at or past its deadline
            raise _Refuse(
                f"CLTV expiry {event.cltv_expiry} too close to height {height} "
                f"(margin {self._config.cltv_margin})",
                unknown,
            )
        try:
            client = self._feds.client(fid)
        except GatewayError as exc:
            raise _Refuse(exc.message, answer_fail(TEMPORARY_NODE_FAILURE)) from None
        if registration is None:
            request = await self._lookup_v1(client, event, unknown)
            fee = event.amount_msat - request.amount.value
            if event.forward_msat is None or event.forward_msat < request.amount.value:
                raise _Refuse(
                    f"forward amount {event.forward_msat} below the offer's {request.amount.value} msat",
                    unknown,
                )
            expected_fee = fed.fees.fee(request.amount).value
            if fee < expected_fee:
                raise _Refuse(f"HTLC pays {fee} msat fee, {expected_fee} msat required", unknown)
            rec = repo.PaymentRecord(
                payment_id=payment_id,
                kind=PaymentKind.RECEIVE,
                state=PaymentState.HTLC_HELD,
                payment_hash=event.payment_hash,
                amount_msat=request.amount.value,
                fee_msat=fee,
                federation_id=fid.hex,
                htlc_scid=event.incoming_scid,
                htlc_id=event.htlc_id,
                created_at=now,
                updated_at=now,
                data={"api": "v1", "request": request_json(request), "started": time.time()},
            )
        else:
            # The registered payment becomes this HTLC's flow (keyed by the HTLC from now on).
            rec = registration.advance(
                PaymentState.HTLC_HELD,
                now,
                fee_msat=event.amount_msat - registration.amount_msat,
                htlc_scid=event.incoming_scid,
                htlc_id=event.htlc_id,
                data={"started": time.time()},
            )
        async with self._db.transaction() as conn:
            # Checked again inside the write transaction: two HTLCs for one v2 registration
            # arriving at once must not both take it (one funding, two payments).
            current = await repo.get(conn, rec.payment_id)
            if current is not None and current.state is not PaymentState.REGISTERED:
                raise _Refuse("the payment hash was taken by another HTLC meanwhile", unknown)
            await repo.save(conn, rec)
        return rec

    async def _lookup_v1(self, client: Any, event: HtlcEvent, unknown: dict[str, Any]) -> IncomingRequest:
        try:
            request: IncomingRequest | None = await client.lookup_incoming(event.payment_hash)
        except GatewayError as exc:
            raise _Refuse(
                f"offer lookup failed: {exc.message}", answer_fail(TEMPORARY_NODE_FAILURE)
            ) from None
        if request is None:
            raise _Refuse("no offer for this payment hash", unknown)
        if request.expiry <= self._clock.now():
            raise _Refuse("the offer has expired", unknown)
        return request

    async def _registration(self, event: HtlcEvent, fid: FederationId, now: int) -> repo.PaymentRecord:
        """The live registration this final-hop HTLC pays exactly, or `_PassOn`."""
        registered = [
            r
            for r in await repo.by_hash(self._db.conn, event.payment_hash, PaymentKind.RECEIVE)
            if r.state is PaymentState.REGISTERED and r.federation_id == fid.hex
        ]
        if not registered:
            raise _PassOn("payment hash no longer registered (already paid or expired)")
        reg = registered[0]
        invoice_amount = int(reg.data["invoice_amount_msat"])
        if event.payment_secret != reg.data["payment_secret"]:
            raise _PassOn("not the registered invoice's payment secret")
        if event.total_msat != event.amount_msat:
            raise _PassOn("multi-part payments are not accepted (the invoice does not offer MPP)")
        if event.amount_msat < invoice_amount:
            raise _PassOn(f"HTLC {event.amount_msat} msat below the invoice's {invoice_amount} msat")
        if int(reg.data["invoice_expires_at"]) <= now:
            raise _PassOn("the registered invoice has expired")
        return reg

    # ----- the flow ----------------------------------------------------------------------
    async def _drive(self, rec: repo.PaymentRecord, event: HtlcEvent) -> dict[str, Any]:
        """From HTLC_HELD (a funding may be submitted) or later: never answers `fail` unless the
        federation refused the funding, or it was abandoned, or the receiver's preimage proved
        invalid (the gateway got its ecash back). Anything unexpected is retried, loudly."""
        if rec.state is PaymentState.SUCCEEDED and rec.preimage:
            if rec.data.get("lightning") == RESOLVING:
                self._recovery.follow(rec)
            return answer_resolve(bytes.fromhex(rec.preimage))
        if rec.state.terminal:
            return answer_unknown_payment(event.amount_msat, await self._height(event))
        fid = FederationId(str(rec.federation_id))
        request = request_from_json(rec.data["request"])
        deadline = event.cltv_expiry - self._config.cltv_margin
        busy_rounds = 0
        while True:
            height = await self._height(event)
            if height >= deadline:
                if rec.state is PaymentState.HTLC_HELD:
                    if await self._abandon_at_deadline(rec, event, height):
                        return answer_unknown_payment(event.amount_msat, height)
                else:
                    self._log(
                        f"receive {rec.payment_id}: HTLC past its deadline (height {height}, expiry "
                        f"{event.cltv_expiry}, margin {self._config.cltv_margin}) with the contract "
                        "funded and no preimage yet: still holding it; lightningd's peer closes the "
                        "channel on chain at expiry",
                        "error",
                    )
            try:
                client = self._feds.client(fid)
                if rec.state is PaymentState.HTLC_HELD:
                    contract_id = await client.fund_incoming(request, rec.payment_id)
                    took = await federation_fees.funding_fee(client, request, rec.payment_id, self._log)
                    rec = await self._ctx.advance(
                        rec, PaymentState.FUNDED, data={"contract_id": contract_id, **took}
                    )
                    federation_fees.warn_if_short(rec, self._log)
                    self._log(f"receive {rec.payment_id}: funded; awaiting the preimage", "debug")
                outcome = await client.await_preimage(str(rec.data["contract_id"]), POLL_TIMEOUT)
                if outcome.state is IncomingState.PREIMAGE and outcome.preimage is not None:
                    if hashlib.sha256(outcome.preimage).hexdigest() != rec.payment_hash:
                        self._log(
                            f"receive {rec.payment_id}: adapter gave a preimage of another hash", "error"
                        )
                        await asyncio.sleep(RETRY_PAUSE)
                        continue
                    # Channel moves from here on tell whether lightningd took the answer (read
                    # before answering: the credit comes after).
                    moves_from = await self._recovery.moves_index()
                    done = await self._ctx.advance(
                        rec,
                        PaymentState.SUCCEEDED,
                        preimage=outcome.preimage.hex(),
                        data={"lightning": RESOLVING, "moves_from": moves_from},
                    )
                    self._log(f"receive {rec.payment_id}: preimage known; resolving the HTLC", "debug")
                    self._recovery.follow(done)
                    return answer_resolve(outcome.preimage)
                if outcome.state is IncomingState.REFUNDED:
                    took = federation_fees.refund_fee(rec, request.amount, outcome.refunded)
                    await self._ctx.advance(
                        rec, PaymentState.REFUNDED, error="the receiver's preimage was invalid", data=took
                    )
                    return answer_unknown_payment(event.amount_msat, await self._height(event))
                # PENDING / FUNDED: not decided yet; keep the HTLC and ask again.
            except GatewayError as exc:
                if rec.state is PaymentState.HTLC_HELD and _definitive(exc):
                    # Nothing was funded: fail the HTLC now.
                    await self._ctx.advance(rec, PaymentState.FAILED, error=exc.message)
                    return answer_unknown_payment(event.amount_msat, await self._height(event))
                busy = isinstance(exc, NotReady)  # ecash tied up by other flows: soon free again
                busy_rounds = busy_rounds + 1 if busy else 0
                if not busy or busy_rounds % BUSY_LOG_EVERY == 1:
                    self._log(f"receive {rec.payment_id}: {exc.message}; retrying", "info")
                await asyncio.sleep(BUSY_PAUSE if busy else RETRY_PAUSE)
            except Exception as exc:  # a malformed answer, a database error...: never `fail` here
                self._log(
                    f"receive {rec.payment_id} in {rec.state.value}: unexpected {exc!r}; "
                    "the HTLC stays held, retrying",
                    "error",
                )
                await asyncio.sleep(RETRY_PAUSE)

    async def _abandon_at_deadline(self, rec: repo.PaymentRecord, event: HtlcEvent, height: int) -> bool:
        """At the HTLC's deadline with no funding known: fail it in time if the funding certainly
        never happened (True); else keep going (the funding was accepted, or nobody can tell yet)."""
        where = f"height {height}, expiry {event.cltv_expiry}, margin {self._config.cltv_margin}"
        try:
            abandoned = await self._feds.client(FederationId(str(rec.federation_id))).abandon_funding(
                rec.payment_id
            )
        except Exception as exc:
            self._log(
                f"receive {rec.payment_id}: HTLC at its deadline ({where}) and the federation cannot "
                f"tell whether the funding happened ({exc!r}): still holding it",
                "error",
            )
            return False
        if not abandoned:
            return False  # the federation accepted the funding: finish it and wait for the preimage
        await self._ctx.advance(
            rec, PaymentState.FAILED, error=f"not funded before the HTLC's deadline ({where})"
        )
        self._log(
            f"receive {rec.payment_id}: not funded before the HTLC's deadline ({where}); failed it", "warn"
        )
        return True

    async def reconcile(self, grace: float) -> None:
        """After a start: settle receives whose HTLC lightningd no longer holds, and check the
        ones answered `resolve` (receive_recovery.py)."""
        await self._recovery.reconcile(grace)

    async def _record_refusal(
        self, payment_id: str, event: HtlcEvent, decision: RouteDecision, reason: str
    ) -> None:
        now = self._clock.now()
        rec = repo.PaymentRecord(
            payment_id=payment_id,
            kind=PaymentKind.RECEIVE,
            state=PaymentState.FAILED,
            payment_hash=event.payment_hash,
            amount_msat=event.amount_msat,
            federation_id=decision.federation_id.hex if decision.federation_id else None,
            htlc_scid=event.incoming_scid,
            htlc_id=event.htlc_id,
            created_at=now,
            updated_at=now,
            error=reason,
        )
        async with self._db.transaction() as conn:
            await repo.save(conn, rec)


def _definitive(exc: GatewayError) -> bool:
    """Errors after which funding certainly did not happen (the federation said no)."""
    from fedimint_gw.errors import FederationRejected, InsufficientFunds, InvalidInput

    return isinstance(exc, (FederationRejected, InsufficientFunds, InvalidInput))
