"""Peer forwards (docs/peer-protocol.md §5, §7): a payment handed to another gateway, not to Lightning.

A user's send whose invoice ends at a peer (payment kind PEER, id `send:<contract id>`):
    HTLC_HELD --forward--> (succeeded) CLAIMING + ledger entry --claim--> SUCCEEDED
                           (failed)    CANCELLING --cancel/forfeit--> REFUNDED
                           (not started: refused, unreachable, cancelled) -> a Lightning send (PAYING)
Sending a forward until its outcome is known is forward_sender.py; receiving and routing forwards
(`peer-in:<peer>:<forward id>`, `peer-out:<forward id>`) is forwards_in.py. This module plans a
user's send as a forward, and is the one forward service the gateway wires.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fedimint_gw.domain.payment import PaymentKind, PaymentState
from fedimint_gw.lightning import bolt11
from fedimint_gw.peer import wire
from fedimint_gw.services.context import ServiceContext
from fedimint_gw.services.payments.swap import SwapService
from fedimint_gw.services.peering.credit import CreditLines, Direction
from fedimint_gw.services.peering.forward_sender import (
    AfterDebt,
    ForwardSender,
    Outcome,
    forward_deadline,
    forward_id_hash,
    out_data,
)
from fedimint_gw.services.peering.forwards_in import InboundForwards
from fedimint_gw.services.peering.links import PeerService
from fedimint_gw.store import payments as pay_repo
from fedimint_gw.store import peers as repo


class ForwardService:
    """Sends forwards to peers, receives them, and routes them."""

    def __init__(
        self,
        ctx: ServiceContext,
        peers: PeerService,
        swaps: SwapService,
        after_debt: AfterDebt | None = None,
    ) -> None:
        self._ctx = ctx
        self._peers = peers
        self._credit = CreditLines(ctx)
        self._sender = ForwardSender(ctx, peers, after_debt)
        self._inbound = InboundForwards(ctx, peers, swaps, self._sender, self._credit)

    # ----- sender side -----------------------------------------------------------------
    async def plan(
        self, rec: pay_repo.PaymentRecord, inv: bolt11.Invoice, contract_amount: int
    ) -> pay_repo.PaymentRecord | None:
        """`rec` turned into a peer forward if the invoice ends at a peer and credit allows, else None.
        A forward is stored here, under the link's lock, so that its credit is reserved."""
        target = await self._peers.find_target(inv)
        if target is None:
            return None
        if contract_amount < target.amount_msat + rec.fee_msat:
            self._ctx.log(
                f"send {rec.payment_id}: contract too small for the peer forward; Lightning", "info"
            )
            return None
        peer = await repo.get(self._ctx.db.conn, target.node_id)
        if peer is None or peer.version < wire.FORWARD_VERSION:
            self._ctx.log(
                f"send {rec.payment_id}: peer {target.node_id[:16]} speaks protocol version "
                f"{peer.version if peer else '?'}, without forward deadlines; paying over Lightning",
                "info",
            )
            return None
        deadline = forward_deadline(self._ctx.clock.now(), int(rec.data.get("max_delay", 0)))
        if deadline is None:
            self._ctx.log(f"send {rec.payment_id}: too little time left to forward; Lightning", "info")
            return None
        # Check and reserve in one step: the stored record is the reservation (credit.py).
        async with self._credit.lock(target.node_id, Direction.OUT):
            if not await self._credit.may_borrow(target.node_id, target.amount_msat):
                self._ctx.log(
                    f"send {rec.payment_id}: forward would exceed the credit peer {target.node_id[:16]} "
                    "grants; paying over Lightning",
                    "info",
                )
                return None
            forward = replace(
                rec,
                kind=PaymentKind.PEER,
                state=PaymentState.HTLC_HELD,
                data={**rec.data, **out_data(target, "f-" + forward_id_hash(rec.payment_id), 0, deadline)},
            )
            async with self._ctx.db.transaction() as conn:
                await pay_repo.save(conn, forward)
        return forward

    async def drive_send(self, rec: pay_repo.PaymentRecord) -> pay_repo.PaymentRecord:
        """Forward a user's payment; returns it CLAIMING, CANCELLING, or fallen back to Lightning."""
        resolved = await self._sender.resolve(rec)
        if resolved.outcome is not Outcome.NOT_STARTED:
            return resolved.rec
        self._ctx.log(
            f"send {rec.payment_id}: peer forward not started ({resolved.reason}); Lightning", "info"
        )
        new = resolved.rec.advance(
            PaymentState.PAYING, self._ctx.clock.now(), data={"peer_fallback": resolved.reason}
        )
        new = replace(new, kind=PaymentKind.SEND)
        async with self._ctx.db.transaction() as conn:
            await pay_repo.save(conn, new)
            await repo.set_kind(conn, new.payment_id, PaymentKind.SEND)
        return new

    # ----- receiver side (forwards_in.py) ----------------------------------------------
    async def on_forward(self, peer: repo.PeerRecord, body: dict[str, Any]) -> dict[str, Any]:
        """A peer's `forward`: accept it (or refuse, having done nothing), run it, answer its outcome."""
        return await self._inbound.on_forward(peer, body)

    async def on_status(self, peer: repo.PeerRecord, body: dict[str, Any]) -> dict[str, Any]:
        """A peer's `forward_status`: the outcome of a forward (an unknown id asked for is tombstoned)."""
        return await self._inbound.on_status(peer, body)

    async def resume(self) -> None:
        """At start: finish every inbound or routed forward that was cut short."""
        await self._inbound.resume()

    async def stop(self) -> None:
        await self._inbound.stop()
