"""Receives cut short by a plugin crash: found after a start, settled, and any loss reported.

- An open receive whose HTLC lightningd no longer holds (it failed the HTLC when the plugin
  died) is settled: not funded, it simply failed; funded, the gateway waits for the outcome
  (a refund brings its ecash back; a decrypted preimage means the receiver was paid without the
  Lightning side: the loss is recorded as `lost_msat` and reported).
- A receive written SUCCEEDED is marked `resolving` until lightningd shows what it did with the
  HTLC: the plugin may have died between the write and its `resolve` answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fedimint_gw.domain.ids import FederationId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.errors import GatewayError
from fedimint_gw.federation.client import IncomingState
from fedimint_gw.lightning.node import HtlcFate
from fedimint_gw.services.context import ServiceContext
from fedimint_gw.services.events import LOSS_REPORTED, payment_event
from fedimint_gw.services.payments import federation_fees
from fedimint_gw.services.payments.requests import request_from_json
from fedimint_gw.store import payments as repo

POLL_TIMEOUT = 30.0  # one await_preimage round; a flow keeps asking until the outcome is known
RECONCILE_EVERY = 5.0  # seconds between looks at HTLCs listed after a start but never replayed
FOLLOW_PAUSE_MAX = 60.0  # longest pause between looks at an HTLC lightningd has not removed yet
FOLLOW_LOG_EVERY = 10  # a note in the log every this many such looks
RESOLVING = "resolving"  # data "lightning" of a receive answered `resolve`, until its fate is known
_ORPHANED = "lightningd failed the HTLC while the plugin was down"


class ReceiveRecovery:
    """Settles receives whose HTLC is gone and confirms the ones answered `resolve`."""

    def __init__(self, ctx: ServiceContext, in_flight: Callable[[tuple[str, int]], bool]) -> None:
        self._ctx = ctx
        self._db = ctx.db
        self._node = ctx.node
        self._feds = ctx.federations
        self._clock = ctx.clock
        self._log = ctx.log
        self._in_flight = in_flight  # whether the hook is handling this HTLC right now
        self.tasks: set[asyncio.Task[None]] = set()  # cancelled by the receive service's stop()
        self._following: set[str] = set()

    async def reconcile(self, grace: float) -> None:
        """After a start: settle receives whose HTLC lightningd no longer holds.

        lightningd replays HTLCs it still holds right after `init`; those flows continue
        through the hook. But if the plugin died while holding an HTLC, lightningd failed
        it back (even under important-plugin, as of v26.06). Such a receive must not stay
        open: if nothing was funded it simply failed; if the contract was funded, the gateway
        waits for the outcome: a refund brings its ecash back, a decrypted preimage means the
        receiver was paid without the Lightning side and the loss is reported loudly.

        The failed HTLC can still be listed for a while after the start (lightningd removes it
        once the peer is back and the commitments are signed): a receive whose HTLC is listed
        but was not handed to the hook is looked at again every `RECONCILE_EVERY` seconds, until
        its HTLC is replayed or gone.
        """
        await asyncio.sleep(grace)
        for rec in await self._resolving():
            self.follow(rec)
        settling: set[str] = set()
        while True:
            try:
                held = await self._node.incoming_htlcs()
                waiting = await self._settle_orphans(held, settling)
            except Exception as exc:  # lightningd or the database did not answer: ask again
                self._log(f"reconciling receives with lightningd's HTLCs: {exc!r}; retrying", "info")
                waiting = True
            if not waiting:
                return
            await asyncio.sleep(RECONCILE_EVERY)

    async def _settle_orphans(self, held: set[tuple[str, int]], settling: set[str]) -> bool:
        """Start settling every open receive whose HTLC is gone; True while some receive's HTLC
        is still listed by lightningd without being in a flow of ours."""
        waiting = False
        for rec in await repo.unfinished(self._db.conn):
            if rec.kind is not PaymentKind.RECEIVE or rec.htlc_scid is None or rec.htlc_id is None:
                continue
            key = (rec.htlc_scid, rec.htlc_id)
            if rec.payment_id in settling or self._in_flight(key):
                continue
            if key in held:
                waiting = True
                continue
            settling.add(rec.payment_id)
            task = asyncio.create_task(self._orphaned(rec))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return waiting

    async def _resolving(self) -> list[repo.PaymentRecord]:
        """The receives answered `resolve` whose fate is not confirmed yet (read until it works)."""
        while True:
            try:
                return await repo.resolving_receives(self._db.conn)
            except Exception as exc:
                self._log(f"receives answered `resolve`: cannot read them ({exc!r}); retrying", "error")
                await asyncio.sleep(RECONCILE_EVERY)

    async def moves_index(self) -> int:
        """lightningd's newest channel move index, or 0 (read them all) if it cannot say."""
        try:
            return await self._node.channel_moves_index()
        except Exception as exc:
            self._log(f"channel moves index unknown ({exc!r}); the check reads every move", "info")
            return 0

    def follow(self, rec: repo.PaymentRecord) -> None:
        """Watch, in the background, what lightningd did with the HTLC of `rec` (answered `resolve`)."""
        if rec.payment_id in self._following:
            return
        self._following.add(rec.payment_id)
        task = asyncio.create_task(self._confirm_resolved(rec))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(lambda _t: self._following.discard(rec.payment_id))

    async def _confirm_resolved(self, rec: repo.PaymentRecord) -> None:
        """A receive is written SUCCEEDED (with its preimage) before its `resolve` answer is
        given; a plugin killed in between leaves lightningd to fail the HTLC while the receiver
        was paid. Once lightningd removed the HTLC, its channel moves tell: a credit for the
        payment hash means fulfilled; none (seen twice, a round apart) means failed, and the
        loss is recorded and reported like any other."""
        scid, htlc_id = rec.htlc_scid, rec.htlc_id
        if scid is None or htlc_id is None:
            return
        failed_rounds, pending_rounds, pause = 0, 0, RECONCILE_EVERY
        moves_from = int(rec.data.get("moves_from", 0))
        while True:
            try:
                fate = await self._node.incoming_htlc_fate(scid, htlc_id, rec.payment_hash, moves_from)
                if fate is HtlcFate.FULFILLED or fate is HtlcFate.UNKNOWN:
                    if fate is HtlcFate.UNKNOWN:
                        self._log(
                            f"receive {rec.payment_id}: lightningd no longer lists its HTLC; cannot "
                            "confirm that its `resolve` answer was applied",
                            "warn",
                        )
                    await self._mark(rec.advance(rec.state, rec.updated_at, data={"lightning": fate.value}))
                    return
                failed_rounds = failed_rounds + 1 if fate is HtlcFate.FAILED else 0
                if failed_rounds >= 2:
                    await self._report_unresolved(rec)
                    return
                if fate is HtlcFate.PENDING:
                    # Removed once its peer is online and the commitments are signed: minutes,
                    # or longer while the peer is away. Ask less often; say so now and then.
                    pending_rounds += 1
                    if pending_rounds % FOLLOW_LOG_EVERY == 0:
                        self._log(
                            f"receive {rec.payment_id}: lightningd has not removed its HTLC yet "
                            "(its peer may be offline); still watching",
                            "info",
                        )
                    pause = min(pause * 2, FOLLOW_PAUSE_MAX)
            except Exception as exc:  # lightningd or the database did not answer: ask again
                self._log(f"receive {rec.payment_id}: checking its HTLC: {exc!r}; retrying", "info")
            await asyncio.sleep(pause if failed_rounds == 0 else RECONCILE_EVERY)

    async def _mark(self, rec: repo.PaymentRecord) -> None:
        async with self._db.transaction() as conn:
            await repo.save(conn, rec)

    async def _report_unresolved(self, rec: repo.PaymentRecord) -> None:
        loss = (
            f"{_ORPHANED} before the gateway's `resolve` reached it; the receiver got "
            f"{rec.amount_msat} msat the gateway never received"
        )
        self._log(f"receive {rec.payment_id}: {loss}", "error")
        lost = rec.advance(
            PaymentState.FAILED,
            self._clock.now(),
            error=loss,
            data={"lightning": HtlcFate.FAILED.value, "lost_msat": rec.amount_msat},
        )
        await self._mark(lost)
        self._ctx.events.emit(LOSS_REPORTED, {**payment_event(lost), "lost_msat": rec.amount_msat})

    async def _orphaned(self, rec: repo.PaymentRecord) -> None:
        fid = FederationId(str(rec.federation_id))
        while True:
            try:
                client = self._feds.client(fid)
                if rec.state is PaymentState.HTLC_HELD:
                    if await client.abandon_funding(rec.payment_id):
                        await self._ctx.advance(rec, PaymentState.FAILED, error=_ORPHANED)
                        return
                    request = request_from_json(rec.data["request"])
                    cid = await client.fund_incoming(request, rec.payment_id)  # finishes the accepted one
                    took = await federation_fees.funding_fee(client, request, rec.payment_id, self._log)
                    rec = await self._ctx.advance(rec, PaymentState.FUNDED, data={"contract_id": cid, **took})
                outcome = await client.await_preimage(str(rec.data["contract_id"]), POLL_TIMEOUT)
            except GatewayError as exc:
                self._log(f"receive {rec.payment_id} (HTLC gone): {exc.message}; retrying", "info")
                await asyncio.sleep(5.0)
                continue
            except Exception as exc:
                self._log(f"receive {rec.payment_id} (HTLC gone): unexpected {exc!r}; retrying", "error")
                await asyncio.sleep(5.0)
                continue
            if outcome.state is IncomingState.REFUNDED:
                amount = request_from_json(rec.data["request"]).amount
                took = federation_fees.refund_fee(rec, amount, outcome.refunded)
                await self._ctx.advance(rec, PaymentState.REFUNDED, error=_ORPHANED, data=took)
                return
            if outcome.state is IncomingState.PREIMAGE:
                loss = f"{_ORPHANED}; the receiver got {rec.amount_msat} msat the gateway never received"
                self._log(f"receive {rec.payment_id}: {loss}", "error")
                await self._ctx.advance(
                    rec, PaymentState.FAILED, error=loss, data={"lost_msat": rec.amount_msat}
                )
                return
