"""Direct swaps: a user of federation A pays an invoice that ends in federation B on this gateway.

No Lightning is involved, whatever API versions A and B speak. The order is what makes it
atomic for the gateway:
    HTLC_HELD --fund B's incoming contract--> FUNDED --preimage from B--> CLAIMING
        --claim A's outgoing contract with it--> SUCCEEDED
and on any failure at B before the preimage is known (expired offer, too little gateway
ecash in B, B below threshold, invalid preimage) A's contract is cancelled or forfeited so
the sender is refunded at once (CANCELLING -> REFUNDED), and B's funding, if any, came back.
Each step is persisted before it runs and is idempotent, so a crash anywhere resumes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fedimint_gw.domain.amount import FeeSchedule, Msat
from fedimint_gw.domain.ids import FederationId, ShortChannelId
from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.errors import (
    FederationRejected,
    GatewayError,
    InsufficientFunds,
    InvalidInput,
    NotFound,
    PaymentRefused,
)
from fedimint_gw.federation.client import IncomingRequest, IncomingState
from fedimint_gw.lightning import bolt11
from fedimint_gw.services.context import ServiceContext
from fedimint_gw.services.payments import federation_fees
from fedimint_gw.services.payments.requests import request_from_json
from fedimint_gw.store import federations as fed_repo
from fedimint_gw.store import payments as repo

if TYPE_CHECKING:
    from aiosqlite import Connection

FUND_ATTEMPTS = 3  # tries at funding B while it does not answer, before refunding the sender
PREIMAGE_ROUND = 30.0
RETRY_PAUSE = 2.0


@dataclass(frozen=True)
class SwapTarget:
    """Where a swap ends: the federation, its receive, and (v2) the registration it consumes."""

    federation_id: FederationId
    request: IncomingRequest
    registered_id: str | None


class SwapService:
    """Finds swap targets and runs swaps."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    async def find_target(self, inv: bolt11.Invoice) -> SwapTarget | None:
        """The federation receive this invoice ends in on this gateway, None for a Lightning
        payment. An invoice that ends at this node but in no federation receive is refused:
        paying it over Lightning would be a circular payment through our own node."""
        node_id = bytes.fromhex((await self._ctx.node.info()).node_id)
        payment_hash = inv.payment_hash.hex()
        for route in inv.route_hints:
            hop = route[-1]
            if hop.pubkey != node_id:
                continue
            scid = ShortChannelId.from_int(hop.short_channel_id)
            fid = self._ctx.router.scid_owner(scid)
            if fid is None:
                if scid.block == 0:  # one of our fake scids, of a federation no longer served
                    raise PaymentRefused(
                        f"the invoice ends in scid {scid}, which no longer leads to a federation"
                    )
                continue  # a real private channel of ours: an ordinary Lightning payment
            request = await self._ctx.federations.client(fid).lookup_incoming(payment_hash)
            if request is None:
                raise PaymentRefused("the invoice's offer is unknown to its federation (expired or paid)")
            return SwapTarget(fid, request, None)
        if inv.payee == node_id:
            registered = [
                r
                for r in await repo.by_hash(self._ctx.db.conn, payment_hash, PaymentKind.RECEIVE)
                if r.state is PaymentState.REGISTERED
            ]
            if not registered:
                raise PaymentRefused(
                    "the invoice is payable to this gateway's own node but matches no federation receive; "
                    "refusing a circular payment"
                )
            reg = registered[0]
            return SwapTarget(
                FederationId(str(reg.federation_id)), request_from_json(reg.data["request"]), reg.payment_id
            )
        return None

    async def fee(self, source: FederationId, target: FederationId, amount: Msat) -> Msat:
        """The pair's fee if the operator set one, else the target federation's fees."""
        return (await self.fee_schedule(source, target)).fee(amount)

    async def fee_schedule(self, source: FederationId, target: FederationId) -> FeeSchedule:
        """The pair's fee schedule if the operator set one, else the target federation's."""
        fees: FeeSchedule | None = await fed_repo.pair_fees(self._ctx.db.conn, source, target)
        if fees is None:
            rec = await fed_repo.get(self._ctx.db.conn, target)
            if rec is None:
                raise NotFound(f"federation {target.hex} is not served")
            fees = rec.fees
        return fees

    async def check_liquidity(self, target: SwapTarget) -> None:
        """Refuse early, and clearly, when the gateway's ecash in B cannot fund the receive."""
        have = await self._ctx.federations.client(target.federation_id).balance()
        if have.value < target.request.amount.value:
            raise InsufficientFunds(
                f"the gateway holds {have.value} msat of ecash in the target federation "
                f"{target.federation_id.short()}, {target.request.amount.value} msat needed for this swap"
            )

    async def claim_registration(self, target: SwapTarget, swap_id: str) -> bool:
        """Take the v2 registration out of the HTLC path while the swap runs. Read and taken in
        one write transaction (an HTLC for it may race); False if it is no longer free."""
        async with self._ctx.db.transaction() as conn:
            return await self.take_registration(conn, target.registered_id, swap_id)

    async def take_registration(self, conn: Connection, registered_id: str | None, taker: str) -> bool:
        """`claim_registration` inside the caller's write transaction, so that the taker's own
        record and the taking are one write. True if the registration is now the taker's (or
        there is none); False if an HTLC or another taker holds it, or it ended."""
        if registered_id is None:
            return True
        reg = await repo.get(conn, registered_id)
        if reg is None or reg.state is not PaymentState.REGISTERED:  # taken: by this taker?
            return reg is not None and reg.htlc_scid is None and reg.data.get("swap") == taker
        await repo.save(
            conn, reg.advance(PaymentState.HTLC_HELD, self._ctx.clock.now(), data={"swap": taker})
        )
        return True

    async def release_orphans(self) -> int:
        """At start, before any flow runs, repair the v2 receives swaps took and a crash left
        held: one whose swap was never recorded (the plugin died between taking it and recording
        the send) goes back to the HTLC path: nothing was funded for it, and the sender's
        contract was never acted on (its wallet may ask again, or refund at the timelock). One
        whose swap already knows the preimage (a database written before the two steps became
        one write) is settled. Returns how many were repaired."""
        repaired, settled = 0, []
        now = self._ctx.clock.now()
        async with self._ctx.db.transaction() as conn:
            for reg in await repo.unfinished(conn):
                swap_id = reg.data.get("swap")
                if not (
                    reg.kind is PaymentKind.RECEIVE
                    and reg.state is PaymentState.HTLC_HELD
                    and reg.htlc_scid is None  # held by an HTLC, not by a swap
                    and isinstance(swap_id, str)
                ):
                    continue
                swap = await repo.get(conn, swap_id)
                if swap is None:
                    await repo.save(conn, reg.released(now))
                elif swap.preimage and swap.state in (PaymentState.CLAIMING, PaymentState.SUCCEEDED):
                    settled.append(
                        (reg, self._ctx.moved(reg, PaymentState.SUCCEEDED, preimage=swap.preimage))
                    )
                    await repo.save(conn, settled[-1][1])
                else:
                    continue
                repaired += 1
        self._ctx.announce(*settled)
        if repaired:
            self._ctx.log(f"{repaired} receive(s) left held by a crashed swap: repaired", "info")
        return repaired

    async def drive(self, rec: repo.PaymentRecord) -> repo.PaymentRecord:
        """Run the B side of a swap until the preimage is known or the sender must be refunded.
        Returns the record in CLAIMING or CANCELLING (claiming/cancelling A is the send flow's)."""
        target = FederationId(str(rec.target_federation_id))
        request = request_from_json(rec.data["target_request"])
        failures = 0
        while rec.state in (PaymentState.HTLC_HELD, PaymentState.FUNDED):
            try:
                client = self._ctx.federations.client(target)
                if rec.state is PaymentState.HTLC_HELD:
                    cid = await client.fund_incoming(request, rec.payment_id)
                    took = await federation_fees.funding_fee(client, request, rec.payment_id, self._ctx.log)
                    rec = await self._ctx.advance(
                        rec, PaymentState.FUNDED, data={"target_contract_id": cid, **took}
                    )
                outcome = await client.await_preimage(str(rec.data["target_contract_id"]), PREIMAGE_ROUND)
            except (InsufficientFunds, FederationRejected, InvalidInput, NotFound) as exc:
                if rec.state is PaymentState.HTLC_HELD:
                    return await self._refund_sender(rec, f"the target federation refused: {exc.message}")
                self._ctx.log(f"swap {rec.payment_id}: {exc.message}; retrying", "warn")
                await asyncio.sleep(RETRY_PAUSE)
                continue
            except GatewayError as exc:
                failures += 1
                if rec.state is PaymentState.HTLC_HELD and failures >= FUND_ATTEMPTS:
                    failures = 0
                    rec = await self._give_up_funding(rec, target, exc.message)
                    continue
                self._ctx.log(f"swap {rec.payment_id}: {exc.message}; retrying", "info")
                await asyncio.sleep(RETRY_PAUSE)
                continue
            if outcome.state is IncomingState.PREIMAGE and outcome.preimage is not None:
                rec = await self._preimage_known(rec, outcome.preimage.hex())
            elif outcome.state is IncomingState.REFUNDED:
                rec = await self._refund_sender(
                    rec,
                    "the receiver's preimage was invalid; the gateway was refunded",
                    federation_fees.refund_fee(rec, request.amount, outcome.refunded),
                )
        return rec

    async def _give_up_funding(
        self, rec: repo.PaymentRecord, target: FederationId, reason: str
    ) -> repo.PaymentRecord:
        """B does not answer: refund the sender only once B's funding certainly never happens.
        If B cannot tell, or did accept it, the record stays as it is and funding is retried
        (the retry finds the accepted transaction and finishes it)."""
        try:
            abandoned = await self._ctx.federations.client(target).abandon_funding(rec.payment_id)
        except GatewayError:
            return rec
        if not abandoned:
            return rec
        return await self._refund_sender(rec, f"the target federation did not answer: {reason}")

    async def _refund_sender(
        self, rec: repo.PaymentRecord, reason: str, data: dict[str, Any] | None = None
    ) -> repo.PaymentRecord:
        await self._release_registration(rec)
        return await self._ctx.advance(rec, PaymentState.CANCELLING, error=reason, data=data or {})

    async def _release_registration(self, rec: repo.PaymentRecord) -> None:
        reg_id = rec.data.get("registered_id")
        if reg_id:
            reg = await repo.get(self._ctx.db.conn, str(reg_id))
            if (
                reg is not None
                and reg.state is PaymentState.HTLC_HELD
                and reg.htlc_scid is None
                and reg.data.get("swap") == rec.payment_id
            ):
                async with self._ctx.db.transaction() as conn:
                    await repo.save(conn, reg.released(self._ctx.clock.now()))

    async def _preimage_known(self, rec: repo.PaymentRecord, preimage: str) -> repo.PaymentRecord:
        """CLAIMING, and the v2 receive the swap took settled, in one write: a crash between two
        writes left the receive held for ever (the resumed swap only claims the source)."""
        moves = [(rec, self._ctx.moved(rec, PaymentState.CLAIMING, preimage=preimage))]
        reg_id = rec.data.get("registered_id")
        reg = await repo.get(self._ctx.db.conn, str(reg_id)) if reg_id else None
        if reg is not None and not reg.state.terminal and reg.data.get("swap") == rec.payment_id:
            settled = self._ctx.moved(reg, PaymentState.SUCCEEDED, preimage=preimage)
            moves.append((reg, settled))
        await self._ctx.save_moves(*moves)
        if reg_id:
            self._ctx.router.remove_hash(rec.payment_hash)
        return moves[0][1]


def swap_data(target: SwapTarget) -> dict[str, Any]:
    """What a swap's payment record keeps about its target."""
    from fedimint_gw.services.payments.requests import request_json

    return {"target_request": request_json(target.request), "registered_id": target.registered_id}
